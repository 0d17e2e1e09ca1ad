#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every benchmark binary in $1 (or only bench_$2, with make bench
# ONLY=name), then prints the table of their figures, writes it to
# bench/results/ (latest.csv, latest.md) and draws the scaling study with
# gnuplot (bench/results/scale_time.svg, scale_memory.svg).
# WEFT_BENCH_QUICK=1 (make bench QUICK=1) shortens every benchmark.
set -u
dir=$1
only=${2:-}
only=${only#bench_}
results=$(cd "$(dirname "$0")" && pwd)/results
mkdir -p "$results"
csv=$results/latest.csv
rm -f "$csv" "$results"/*.svg "$results/latest.md"
export WEFT_BENCH_CSV="$csv"

machine="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: *//'), \
$(nproc) CPUs, $(uname -sr)"
day=$(date -u +%Y-%m-%d)
t0=$(date +%s)

status=0
ran=0
done_list=""
# The table's benchmarks first, then the targets of earlier issues.
for name in micro scale echo core loop http \
    $(cd "$dir" && ls bench_* 2>/dev/null | sed 's/^bench_//'); do
    b=$dir/bench_$name
    [ -x "$b" ] || continue
    case " $done_list " in *" $name "*) continue ;; esac
    done_list="$done_list $name"
    [ -n "$only" ] && [ "$name" != "$only" ] && continue
    echo "== bench_$name"
    t=$(date +%s)
    "$b" || status=$?
    ran=$((ran + 1))
    echo "(bench_$name took $(($(date +%s) - t)) s)"
    echo
done
if [ "$ran" = 0 ]; then
    echo "weft bench: no benchmark named '$only' (try: $(cd "$dir" && ls bench_* | sed 's/^bench_//' | tr '\n' ' '))"
    exit 1
fi

# ---- the table ----
if [ -s "$csv" ]; then
    {
        echo "weft against pthreads and other runtimes: $machine; $day"
        echo
        echo "| benchmark | condition | unit | weft | weft min-max | pthreads, 1 CPU | pthreads, 2 CPUs | Boost.Context | State Threads | Go | floor | weft's advantage |"
        echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        awk -F, 'function f(x) {
                if (x == "-") return "-"
                x += 0
                if (x >= 100) return sprintf("%.0f", x)
                if (x >= 10) return sprintf("%.1f", x)
                return sprintf("%.2f", x)
            }
            NR > 1 {
                r = $11 == "-" ? "-" : f($11) "x"
                printf "| %s | %s | %s | %s | %s-%s | %s | %s | %s | %s | %s | %s | %s |\n",
                    $1, $2, $3, f($4), f($13), f($14), f($5), f($6), f($7),
                    f($8), f($9), f($10), r
            }' "$csv"
    } > "$results/latest.md"
    echo "== the table (medians; $results/latest.md, latest.csv)"
    cat "$results/latest.md"
    echo
    echo "weft's advantage: how many times better weft does than the better of"
    echo "the two pthread figures (their time over weft's, or weft's rate over"
    echo "theirs); above 1, weft wins. '-': not measured (no equivalent, not"
    echo "installed, or past what the machine allows)."
fi

# ---- the pictures: the scaling study ----
scale_plot() { # $1 = name in the CSV, $2 = file, $3 = title, $4 = y label, $5 = columns
    dat=$results/$2.dat
    awk -F, -v name="$1" '$1 == name {
            match($2, /N=[0-9]+/)
            print substr($2, RSTART + 2, RLENGTH - 2), $4, $5, $9, $10
        }' "$csv" > "$dat"
    [ -s "$dat" ] || return 1
    # Where pthreads stopped, as bench_scale said it in the condition.
    stop=$(awk -F, -v name="$1" '$1 == name && $2 ~ /pthreads stopped/ {
            sub(/^N=[0-9]+; /, "", $2); print $2; exit }' "$csv")
    plots=""
    for c in $5; do
        case $c in
        2) t="weft fibers" ;; 3) t="pthreads" ;; 4) t="Go goroutines" ;;
        5) t="page-touch floor (one page of a new stack)" ;;
        esac
        # gnuplot refuses a series with no point at all.
        awk -v c="$c" '$c != "-"' "$dat" | grep -q . || continue
        plots="$plots${plots:+, }'$dat' using 1:$c with linespoints lw 2 pt 7 title '$t'"
    done
    gnuplot <<GP
set terminal svg size 760,460 dynamic font "sans,12" background "white"
set output "$results/$2.svg"
set title "$3\n$machine; $day" noenhanced
set logscale xy
set datafile missing "-"
set xlabel "N units at once (each blocks once)"
set ylabel "$4"
set xtics ("1k" 1000, "10k" 10000, "100k" 100000, "1M" 1000000)
set xrange [700:1400000]
set key outside below horizontal maxcols 2
set grid
set label 1 "$stop" at graph 0.98, graph 0.95 right font "sans,10" noenhanced
plot $plots
GP
    rm -f "$dat"
}
if [ -s "$csv" ] && grep -q '^scale:' "$csv"; then
    if command -v gnuplot >/dev/null 2>&1; then
        scale_plot "scale: create + block once + finish" scale_time \
            "Create N units, block each once, finish: time per unit" \
            "ns per unit" "2 3 4 5" &&
            scale_plot "scale: memory per unit" scale_memory \
                "Resident memory per unit, all N blocked" \
                "bytes of RSS per unit" "2 3 4" &&
            echo "pictures: $results/scale_time.svg, $results/scale_memory.svg"
    else
        echo "no gnuplot (apt-get install gnuplot-nox; make bench does): no pictures"
    fi
fi

echo "bench took $(($(date +%s) - t0)) s"
[ $status = 0 ] && echo "weft bench: all targets met" ||
    echo "weft bench: some targets missed (see MISS lines above)"
exit 0
