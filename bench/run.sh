#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every benchmark binary in $1 and reports which targets were missed.
set -u
dir=$1
status=0
for b in "$dir"/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || status=$?
    echo
done
[ $status = 0 ] && echo "weft bench: all targets met" ||
    echo "weft bench: some targets missed (see MISS lines above)"
exit 0
