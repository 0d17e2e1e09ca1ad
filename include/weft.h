/* SPDX-License-Identifier: MIT */
/*
 * weft: stackful coroutines for C, scheduled by a per-thread event loop.
 *
 * The one public header. Types are opaque; every declaration carries its
 * one-line contract. Conventions (DESIGN.md): calls returning int/ssize_t
 * give >= 0 on success and a negative errno on failure and never set
 * errno; calls returning an object pointer give NULL and set errno.
 *
 * FP control state: a context switch preserves every callee-saved integer
 * and FP/SIMD register, but by default NOT the floating-point control
 * state (x86_64 MXCSR and x87 control word, aarch64 FPCR): saving it costs
 * about 40% of a switch and real code almost never changes it. A fiber
 * that changes the rounding mode or exception masks must restore them
 * before it suspends, or the library must be built with `make FPENV=1`,
 * which preserves that state across every switch (WEFT_FPENV is then 1).
 */
#ifndef WEFT_H
#define WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1

/* A fiber's body: the pthread signature. A fiber fails by returning
 * WEFT_ERR_PTR(-errno). */
typedef void *(*weft_fn)(void *arg);

/* The kernel's ERR_PTR idiom: errors -4095..-1 encoded in a pointer. */
#define WEFT_ERR_PTR(err) ((void *)(intptr_t)(err))
#define WEFT_IS_ERR(p) ((uintptr_t)(void *)(p) >= (uintptr_t)-4095)
#define WEFT_PTR_ERR(p) ((int)(intptr_t)(void *)(p))

/* Stack sizes, in bytes, counted without the guard page. */
#define WEFT_STACK_DEFAULT (64 * 1024)
#define WEFT_STACK_MIN (16 * 1024)           /* below: -EINVAL */
#define WEFT_STACK_MAX (1024L * 1024 * 1024) /* above: -EINVAL */

/* Options for weft_spawn_ex and weft_coro_new; zero-initialise, then set. */
typedef struct weft_spawn_opts {
    size_t stack_size; /* 0 = WEFT_STACK_DEFAULT; rounded up to a page */
    const char *name;  /* copied (up to 31 bytes); NULL = "fiber#<id>" */
} weft_spawn_opts;

/* 1 when this build preserves the FP control state across switches. */
WEFT_API int weft_fpenv(void);

/* ------------------------------------------------------------------ */
/* Coroutines: the core layer, without a loop. A coroutine runs on its own
 * guarded, pooled stack when resumed, until it yields or returns. The
 * event loop's fibers are built on these; they are public for embedders
 * that bring their own scheduler, and for benchmarks. A coroutine belongs
 * to the thread that created it. */
typedef struct weft_coro weft_coro;

/* New coroutine that will run fn(arg); NULL opts = defaults. Sets errno
 * to EINVAL (NULL fn, stack size out of range) or ENOMEM. */
WEFT_API weft_coro *weft_coro_new(weft_fn fn, void *arg,
                                  const weft_spawn_opts *opts);
/* Runs co until it yields (returns 0) or returns (returns 1, its result
 * in *result if result is not NULL); -EINVAL if co is NULL, finished, or
 * already running (a coroutine cannot resume itself or its resumer). */
WEFT_API int weft_coro_resume(weft_coro *co, void **result);
/* Suspends the running coroutine back to its resumer; -EPERM outside one. */
WEFT_API int weft_coro_yield(void);
/* The running coroutine, or NULL on a thread's own stack. */
WEFT_API weft_coro *weft_coro_current(void);
/* Its name (the one given, or "fiber#<id>"); never NULL for a valid co. */
WEFT_API const char *weft_coro_name(weft_coro *co);
/* Bytes of stack it was given (without the guard page). */
WEFT_API size_t weft_coro_stack_size(const weft_coro *co);
/* True once fn has returned. */
WEFT_API bool weft_coro_done(const weft_coro *co);
/* Frees it and returns its stack to this thread's pool. A coroutine
 * suspended mid-way is dropped without unwinding: its cleanup never runs.
 * Must not be the running coroutine or one of its resumers. */
WEFT_API void weft_coro_free(weft_coro *co);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
