#!/bin/sh
# SPDX-License-Identifier: MIT
#
# deps.sh GROUP... -- make sure the Debian packages a make target needs are
# present; install them when running as root with apt-get, otherwise stop
# with the exact command to run.
#
# Groups:
#   lib      jemalloc for the host (what `make` needs with ALLOC=jemalloc)
#   native   libcheck and jemalloc for the host (pkg-config names check, jemalloc),
#            curl and wrk (the examples' tests drive the servers with them)
#   cross    the aarch64 and riscv64 cross toolchains, qemu-user, and arm64
#            libcheck/jemalloc (riscv64 has no multiarch in Debian 12: its
#            tests need only libc, and link ALLOC=libc)
#   boost    Boost.Context (a benchmark comparator only; failure is not fatal)
#   st       State Threads (a benchmark comparator only; not fatal)
#   go       Go (the goroutine comparators of bench_micro and bench_scale;
#            not fatal)
#   http     wrk and nginx (bench_http's load generator and comparator; not
#            fatal)
#   plot     gnuplot (make bench draws the scaling study with it; not fatal)
#   fuzz     clang with libFuzzer (compiler-rt) for `make fuzz`
#   kqueue   cmake, to build libkqueue for `make test-kqueue`
set -u

need_lib() {
    pkg-config --exists jemalloc 2>/dev/null || echo "libjemalloc-dev:$(dpkg --print-architecture)"
}

need_native() {
    pkg-config --exists check 2>/dev/null || echo "check libsubunit-dev"
    need_lib
    command -v pkg-config >/dev/null 2>&1 || echo "pkg-config"
    # Clients nobody here wrote, for tests/examples.c.
    command -v curl >/dev/null 2>&1 || echo "curl"
    command -v wrk >/dev/null 2>&1 || echo "wrk"
}

need_cross() {
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
        echo "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
    command -v riscv64-linux-gnu-gcc >/dev/null 2>&1 ||
        echo "gcc-riscv64-linux-gnu libc6-dev-riscv64-cross"
    { command -v qemu-aarch64 && command -v qemu-riscv64; } >/dev/null 2>&1 ||
        echo "qemu-user"
    PKG_CONFIG_PATH=/usr/lib/aarch64-linux-gnu/pkgconfig PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
        pkg-config --exists check 2>/dev/null ||
        echo "check:arm64 libsubunit-dev:arm64"
    # libjemalloc-dev is not Multi-Arch: same (its arm64 build would remove
    # the host's), so the aarch64 build links the arm64 runtime library by
    # path with the host's header.
    [ -e /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 ] ||
        echo "libjemalloc2:arm64"
}

need_fuzz() {
    command -v clang >/dev/null 2>&1 || { echo "clang libclang-rt-14-dev"; return; }
    tmp=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' > "$tmp/f.c"
    clang -fsanitize=fuzzer "$tmp/f.c" -o "$tmp/f" >/dev/null 2>&1 ||
        echo "libclang-rt-14-dev"
    rm -rf "$tmp"
}

need_kqueue() {
    command -v cmake >/dev/null 2>&1 || echo "cmake"
}

need_boost() {
    [ -e /usr/include/boost/context/detail/fcontext.hpp ] ||
        echo "libboost-context-dev"
}

need_st() {
    [ -e /usr/include/st.h ] || echo "libst-dev"
}

need_go() {
    command -v go >/dev/null 2>&1 || echo "golang-go"
}

need_http() {
    command -v wrk >/dev/null 2>&1 || echo "wrk"
    [ -x /usr/sbin/nginx ] || echo "nginx-light"
}

need_plot() {
    command -v gnuplot >/dev/null 2>&1 || echo "gnuplot-nox"
}

apt_install() { # $1 = multiarch needed (0/1), rest = packages
    multi=$1
    shift
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    if [ "$multi" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64 || return 1
        rm -f /var/lib/apt/periodic/weft-updated
    fi
    if [ ! -e /var/lib/apt/periodic/weft-updated ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/weft-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

status=0
for group in "$@"; do
    case $group in
    native) pkgs=$(need_native | tr '\n' ' ') multi=0 fatal=1 ;;
    lib) pkgs=$(need_lib | tr '\n' ' ') multi=0 fatal=1 ;;
    cross) pkgs=$(need_cross | tr '\n' ' ') multi=1 fatal=1 ;;
    boost) pkgs=$(need_boost | tr '\n' ' ') multi=0 fatal=0 ;;
    st) pkgs=$(need_st | tr '\n' ' ') multi=0 fatal=0 ;;
    go) pkgs=$(need_go | tr '\n' ' ') multi=0 fatal=0 ;;
    http) pkgs=$(need_http | tr '\n' ' ') multi=0 fatal=0 ;;
    plot) pkgs=$(need_plot | tr '\n' ' ') multi=0 fatal=0 ;;
    fuzz) pkgs=$(need_fuzz | tr '\n' ' ') multi=0 fatal=1 ;;
    kqueue) pkgs=$(need_kqueue | tr '\n' ' ') multi=0 fatal=1 ;;
    *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
    [ -z "$(echo "$pkgs" | tr -d ' ')" ] && continue
    echo "weft: installing $group dependencies: $pkgs" >&2
    # shellcheck disable=SC2086
    if apt_install "$multi" $pkgs >&2; then
        continue
    fi
    if [ "$fatal" = 1 ]; then
        echo "weft: missing packages for '$group'. Run as root:" >&2
        [ "$multi" = 1 ] && echo "  dpkg --add-architecture arm64" >&2
        echo "  apt-get update && apt-get install -y $pkgs" >&2
        status=1
    else
        echo "weft: optional '$group' packages not installed ($pkgs); continuing without them" >&2
    fi
done
exit $status
