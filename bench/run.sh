#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every benchmark binary in $1 (or only bench_$2, with make bench
# ONLY=name) and reports which targets were missed. WEFT_BENCH_QUICK=1
# (make bench QUICK=1) shortens the benchmarks that take long.
set -u
dir=$1
only=${2:-}
only=${only#bench_}
status=0
ran=0
for b in "$dir"/bench_*; do
    [ -x "$b" ] || continue
    [ -n "$only" ] && [ "$(basename "$b")" != "bench_$only" ] && continue
    echo "== $(basename "$b")"
    "$b" || status=$?
    ran=$((ran + 1))
    echo
done
if [ "$ran" = 0 ]; then
    echo "weft bench: no benchmark named '$only' (try: $(cd "$dir" && ls bench_* | tr '\n' ' '))"
    exit 1
fi
[ $status = 0 ] && echo "weft bench: all targets met" ||
    echo "weft bench: some targets missed (see MISS lines above)"
exit 0
