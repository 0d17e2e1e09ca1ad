#!/bin/sh
# SPDX-License-Identifier: MIT
#
# gdb walks through a switch: a breakpoint inside a context shows the
# context's frames, ends at the trampoline, and reports no corrupt stack.
# Usage: gdb_backtrace.sh path/to/conform
set -u
bin=$1
out=$(gdb -nx -batch -ex 'break weft_probe_backtrace_here' -ex run -ex bt \
    "$bin" 2>&1)
fail() {
    echo "not ok - gdb backtrace inside a context: $1"
    echo "$out" | sed 's/^/# /'
    exit 1
}
echo "$out" | grep -q 'weft_probe_backtrace_here' || fail "breakpoint not hit"
echo "$out" | grep -q 'weft__trampoline' || fail "no trampoline frame"
echo "$out" | grep -qiE 'corrupt|previous frame identical|Cannot access' &&
    fail "unwinder complained"
last=$(echo "$out" | grep -E '^#[0-9]+' | tail -n 1)
echo "$last" | grep -q 'weft__trampoline' || fail "last frame is not the trampoline: $last"
echo "ok - gdb backtrace inside a context ends at the trampoline"
