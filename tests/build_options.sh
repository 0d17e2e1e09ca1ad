#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build options rebuild the objects they change: ALLOC=jemalloc, then
# ALLOC=libc, then jemalloc again, in one BUILD folder, must each compile
# the library again with that option (and give a weft.pc that links
# jemalloc or not); unchanged options rebuild nothing. And weft.pc's plain
# (dynamic) Libs carry -pthread.
# Quick: -O0, the static library and weft.pc only. Run by make test-native.
set -eu
MAKE=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-build-options.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail()
{
    echo "build_options: FAIL: $*" >&2
    exit 1
}

build()
{
    $MAKE --no-print-directory BUILD="$tmp" OPT=-O0 "$@" \
        "$tmp/libweft.a" "$tmp/weft.pc" >"$tmp/log" 2>&1 ||
        { cat "$tmp/log" >&2; fail "make $*"; }
}

# The last build compiled core/alloc.c with WEFT_ALLOC_JEMALLOC=$1.
compiled_with()
{
    grep -- ' -c core/alloc.c ' "$tmp/log" | grep -q -- "-DWEFT_ALLOC_JEMALLOC=$1"
}

pc()
{
    PKG_CONFIG_PATH="$tmp" pkg-config "$@" weft
}

if echo '#include <jemalloc/jemalloc.h>' |
    ${CC:-cc} -E -x c - >/dev/null 2>&1; then
    jemalloc=1
else
    echo "build_options: jemalloc not installed: only ALLOC=libc checked"
    jemalloc=0
fi

if [ $jemalloc = 1 ]; then
    build ALLOC=jemalloc
    compiled_with 1 || fail "ALLOC=jemalloc: core/alloc.c not compiled for it"
    case " $(pc --static --libs) " in
    *jemalloc*) ;;
    *) fail "ALLOC=jemalloc: pkg-config --static --libs weft lacks jemalloc" ;;
    esac
fi

build ALLOC=libc
compiled_with 0 ||
    fail "ALLOC=libc after ALLOC=jemalloc in one BUILD folder: objects" \
        "not rebuilt"
case " $(pc --libs) " in
*" -pthread "*) ;;
*) fail "pkg-config --libs weft gives '$(pc --libs)': no -pthread" ;;
esac
case " $(pc --static --libs) " in
*jemalloc*) fail "ALLOC=libc: pkg-config --static --libs weft names jemalloc" ;;
esac

build ALLOC=libc
grep -q -- ' -c ' "$tmp/log" &&
    fail "the same options again rebuilt objects: $(cat "$tmp/log")"

if [ $jemalloc = 1 ]; then
    build ALLOC=jemalloc
    compiled_with 1 ||
        fail "ALLOC=jemalloc after ALLOC=libc: objects not rebuilt"
fi
echo "build_options: options rebuild what they change; weft.pc has -pthread"
