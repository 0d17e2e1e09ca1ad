/* SPDX-License-Identifier: MIT */
/*
 * core/: coroutines on guarded, pooled stacks, the per-thread state, the
 * stack-overflow handler, and the hooks that tell ASan, TSan and Valgrind
 * about stack switches. What the layers above need of core: the build
 * switches (config.h), the allocator (here), stacks (stack.h) and
 * coroutines (coro.h).
 */
#ifndef WEFT__CORE_INTERNAL_H
#define WEFT__CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../arch/context.h"
#include "../include/weft.h"
#include "config.h"
#include "tunables.h"

/* ---- allocator for the runtime's own objects (core/alloc.c) ---- */
/* Ends the process with "weft: <what>: <strerror(err)>" on stderr: the
 * one way out for what the contract has no error return for (out of
 * memory for a wake-up already promised, a poller that stops working). */
_Noreturn void weft__die(const char *what, int err);
void *weft__alloc(size_t size);  /* NULL on ENOMEM; not zeroed */
void *weft__zalloc(size_t size); /* zeroed */
void weft__free(void *p, size_t size);

/* ---- the calling thread (core/thread.c) ---- */
/* Its number as gdb and ps show it (Linux's gettid), for reports. */
long weft__thread_id(void);

#include "coro.h"
#include "stack.h"

#endif /* WEFT__CORE_INTERNAL_H */
