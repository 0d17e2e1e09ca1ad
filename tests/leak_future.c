/* SPDX-License-Identifier: MIT */
/* Leaks one promise and one channel on purpose. make test-native runs it
 * under valgrind on a libc-malloc build (ALLOC=libc) and expects both to
 * be reported as definitely lost: the runtime's objects are visible to a
 * leak checker there (with jemalloc they are not; README, Leak checking). */
#include <stdio.h>

#include "weft.h"

static void *one(void *arg)
{
    return arg;
}

int main(void)
{
    weft_loop *loop = weft_loop_new();
    weft_future *task = weft_spawn(loop, one, NULL);
    if (loop == NULL || task == NULL || weft_loop_run(loop) != 0)
        return 1;
    weft_future_release(task);
    weft_loop_free(loop);
    /* Made and forgotten: */
    if (weft_future_new() == NULL || weft_chan_new(4) == NULL)
        return 1;
    puts("leak_future: leaked one promise and one channel");
    return 0;
}
