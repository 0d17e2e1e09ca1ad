/* SPDX-License-Identifier: MIT */
/*
 * weft: stackful coroutines for C, scheduled by a per-thread event loop.
 *
 * The one public header. Types are opaque; every declaration carries its
 * one-line contract. Conventions: calls returning int/ssize_t
 * give >= 0 on success and a negative errno on failure and never set
 * errno; calls returning an object pointer give NULL and set errno.
 *
 * FP control state: a context switch preserves every callee-saved integer
 * and FP/SIMD register, but by default NOT the floating-point control
 * state (x86_64 MXCSR and x87 control word, aarch64 FPCR, riscv64 fcsr,
 * whose exception flags travel with each fiber too): saving it costs
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
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

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

/* Stack sizes, in bytes, counted without the guard (64 KiB) below. */
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
/* Bytes of stack it was given (without the guard). */
WEFT_API size_t weft_coro_stack_size(const weft_coro *co);
/* True once fn has returned. */
WEFT_API bool weft_coro_done(const weft_coro *co);
/* Frees it and returns its stack to this thread's pool. A coroutine
 * suspended mid-way is dropped without unwinding: its cleanup never runs.
 * Must not be the running coroutine or one of its resumers. */
WEFT_API void weft_coro_free(weft_coro *co);

/* ------------------------------------------------------------------ */
/* Conventions: int and ssize_t calls return >= 0 on success and a negative
 * errno on failure, and never set errno; calls returning a pointer return
 * NULL and set errno. timeout_ms < 0 waits forever. Every call that can
 * suspend a fiber is a cancellation point: it returns -ECANCELED when the
 * fiber is cancelled while suspended there. */

typedef struct weft_loop weft_loop;
typedef struct weft_future weft_future;
typedef struct weft_timer weft_timer;

/* ---- Loops ---- */

/* A new loop, bound for good to the thread that first runs it. A thread
 * may own several loops and run them one at a time; the one it ran last
 * is its current loop (weft_loop_current, weft_spawn(NULL, ...)); when
 * that one is freed, the one it ran before (and has not freed) is current
 * again. NULL and errno on failure. */
WEFT_API weft_loop *weft_loop_new(void);
/* Cancels every fiber still on the loop, lets each return from its
 * suspension point with -ECANCELED and run its cleanup, then frees
 * everything. Fibers that never ran run too (their first suspension point
 * returns -ECANCELED), and so do submissions and calls still queued from
 * other threads. A wait that ignores cancellation (a weft_cond_wait
 * re-locking its mutex, a caller waiting for tasks it cancelled) and that
 * nothing can end any more returns -ECANCELED instead: teardown always
 * ends, and never spins. Loop thread, outside the loop's fibers. */
WEFT_API void weft_loop_free(weft_loop *loop);
/* Runs until nothing is left to do (no runnable or waiting fiber, timer,
 * watched fd or pending submission): 0. Returns 0 early after
 * weft_loop_stop. -EDEADLK when fibers remain suspended and nothing could
 * ever wake them (a fiber waiting on a channel never counts: any thread
 * may still use the channel); -EBUSY inside a running loop (or any
 * coroutine); -EPERM if the loop belongs to another thread. */
WEFT_API int weft_loop_run(weft_loop *loop);
/* Runs until f is done (asyncio's run_until_complete); 0, or the errors
 * of weft_loop_run (-EDEADLK if f can never complete). Does not consume
 * the caller's reference to f. */
WEFT_API int weft_loop_run_until(weft_loop *loop, weft_future *f);
/* One iteration, blocking at most timeout_ms for IO or timers (0: poll).
 * For embedding in another event loop. Returns how many fibers and
 * callbacks ran, or a negative errno as weft_loop_run. */
WEFT_API int weft_loop_run_once(weft_loop *loop, int64_t timeout_ms);
/* A descriptor that polls readable when the loop has work (ready fibers,
 * due timers, IO, submissions): watch it from a host loop and call
 * weft_loop_run_once when it fires. Owned by the loop. */
WEFT_API int weft_loop_fd(weft_loop *loop);
/* Any thread. Makes weft_loop_run return 0 after its current iteration.
 * On a loop of weft_loop_start_thread it only stops it: the thread waits,
 * and the loop stays valid (submissions queue), until
 * weft_loop_join_thread. */
WEFT_API int weft_loop_stop(weft_loop *loop);
/* Debug mode (also WEFT_DEBUG=1 in the environment, for every new loop):
 * fibers and callbacks that run longer than slow_ms without yielding are
 * reported with their name and time; loop-bound calls from the wrong
 * thread fail with -EPERM and a message naming the call and both threads;
 * failed futures released without being awaited are reported; a
 * deadlocked loop lists each blocked fiber and what it waits on; stack use
 * above 75% is reported with the fiber's name and high-water mark; fibers
 * still alive at weft_loop_free are listed. Reports go to stderr, one line
 * each, starting "weft: ". Off, it costs one predictable branch. */
WEFT_API int weft_loop_set_debug(weft_loop *loop, bool on);
/* The slow threshold in milliseconds (default 100; also WEFT_SLOW_MS).
 * Huge values saturate: "never slow". */
WEFT_API int weft_loop_set_slow_ms(weft_loop *loop, int64_t slow_ms);

/* The calling thread's current loop (the one it runs or ran last and has
 * not freed), or NULL. */
WEFT_API weft_loop *weft_loop_current(void);
/* asyncio.run: a new loop runs main(arg) as a fiber to completion, then
 * cancels what is left and frees the loop. Returns 0 with main's result
 * in *result (if not NULL), main's error if it returned WEFT_ERR_PTR(e),
 * or -EBUSY inside a running loop, -EDEADLK if main can never finish. */
WEFT_API int weft_run(weft_fn main, void *arg, void **result);

/* ---- Fibers (tasks) ---- */

/* A new fiber running fn(arg) on loop (NULL: the current loop). Returns
 * its future, owned by the caller (weft_future_release). NULL and errno:
 * EINVAL (no loop, NULL fn, bad options), EPERM (loop of another thread;
 * use weft_submit), ENOMEM. */
WEFT_API weft_future *weft_spawn(weft_loop *loop, weft_fn fn, void *arg);
WEFT_API weft_future *weft_spawn_ex(weft_loop *loop, weft_fn fn, void *arg,
                                    const weft_spawn_opts *opts);
/* Spawns a detached fiber (nobody gets its future). 0 or -errno. */
WEFT_API int weft_go(weft_loop *loop, weft_fn fn, void *arg);
/* Lets the other ready fibers run, then continues. -EPERM outside a
 * fiber; -ECANCELED if the fiber was cancelled. */
WEFT_API int weft_yield(void);
/* Suspends the fiber for ms milliseconds (ms <= 0: a yield). In a plain
 * thread: sleeps the thread. 0, or -ECANCELED. */
WEFT_API int weft_sleep(int64_t ms);
/* The running fiber's future (borrowed: do not release), NULL outside. */
WEFT_API weft_future *weft_self(void);
WEFT_API bool weft_in_fiber(void);
/* The running fiber's name, or NULL outside fibers. */
WEFT_API const char *weft_fiber_name(void);

/* ---- Futures ----
 * A future is pending, then done with a result or an error (negative
 * errno). Reference counted and thread-safe; a task's future is done when
 * its fiber returns: failed with e if it returned WEFT_ERR_PTR(e). */

/* A promise, completed by anyone from any thread. NULL and errno. */
WEFT_API weft_future *weft_future_new(void);
/* Any thread. -EINVAL if f is NULL, already done, or a task's future
 * (weft_spawn, weft_submit, weft_self): a task's outcome is what its
 * function returns, as asyncio's Task refuses set_result. */
WEFT_API int weft_future_resolve(weft_future *f, void *result);
/* Any thread. err < 0; -EINVAL if f is NULL, already done, a task's
 * future, or err >= 0. */
WEFT_API int weft_future_fail(weft_future *f, int err);
/* Any thread. */
WEFT_API bool weft_future_done(weft_future *f);
/* Non-blocking: 0 with the result in *out (if not NULL), the future's
 * error, or -EAGAIN while it is pending. */
WEFT_API int weft_future_result(weft_future *f, void **out);
/* Calls cb(f, arg) once f is done: on the loop of the thread that
 * registered it (soon, if f is already done), or on the completing thread
 * if registered outside any loop. If that loop has been freed by then,
 * the callback is dropped (never delivered); if f is never completed, the
 * registration is freed with f. 0, -EINVAL, -ENOMEM. */
WEFT_API int weft_future_on_done(weft_future *f,
                                 void (*cb)(weft_future *f, void *arg),
                                 void *arg);
/* Any thread. Drops the caller's reference; a running task keeps
 * running. NULL is ignored. */
WEFT_API void weft_future_release(weft_future *f);
/* In a fiber: suspends until f is done. In a thread that runs no loop:
 * blocks it. On a loop thread outside a fiber: -EDEADLK (it would freeze
 * the loop); awaiting the running fiber's own future: -EDEADLK. Returns 0
 * with the result in *out (if not NULL), or the future's error. The wait
 * holds its own reference: f's other references may be dropped meanwhile
 * (by its task's end, or another thread). Any number of fibers and
 * threads may await one future. */
WEFT_API int weft_await(weft_future *f, void **out);
/* weft_await with a time limit (asyncio.wait_for): on timeout it cancels
 * f and returns -ETIMEDOUT once the cancelled task is done (its cleanup
 * has run: it no longer uses anything the caller lent it). A cancellation
 * of the caller during that wait is kept for its next suspension point. */
WEFT_API int weft_await_timeout(weft_future *f, int64_t timeout_ms, void **out);

#define WEFT_GATHER_ALL 0u /* wait for every one */
#define WEFT_GATHER_FAIL_FAST                                                  \
    1u /* stop at the first error, cancel the rest                             \
        */

/* Awaits all n futures. results[i] and errors[i] (either may be NULL) get
 * each one's result or error, in input order. WEFT_GATHER_ALL: returns 0
 * or the first error by index. WEFT_GATHER_FAIL_FAST: at the first error,
 * cancels the rest and returns that error once they are done (their
 * errors[i] read -ECANCELED unless they finished first). If the awaiting
 * fiber is cancelled, so are the futures, and -ECANCELED is returned once
 * they are done. -EINVAL for bad arguments; -EDEADLK on a loop thread
 * outside a fiber. */
WEFT_API int weft_gather(weft_future *const *fs, size_t n, void **results,
                         int *errors, unsigned flags);

#define WEFT_FIRST_COMPLETED 1 /* any one done */
#define WEFT_FIRST_EXCEPTION 2 /* any one failed, or all done */
#define WEFT_ALL_COMPLETED 3   /* all done */

/* Waits for the condition mode names, or timeout_ms. Returns how many of
 * fs are done (fewer than asked, 0 if none, when it timed out); cancels
 * nothing. -EINVAL, -ECANCELED, -EDEADLK as weft_gather. */
WEFT_API int weft_wait(weft_future *const *fs, size_t n, int mode,
                       int64_t timeout_ms);

/* Any thread. A pending promise fails with -ECANCELED at once; a task
 * gets -ECANCELED from its current or next suspension point and may clean
 * up (its future is done when it returns). A task cancelled before it
 * first ran (a submission still on its way included) still runs: its
 * first suspension point returns -ECANCELED, so what it owns is freed.
 * 0, or -EINVAL if f is NULL or already done. */
WEFT_API int weft_cancel(weft_future *f);

/* ---- Crossing threads ---- */

/* Any thread. Runs fn(arg) as a fiber on target (asyncio's
 * run_coroutine_threadsafe); the future, owned by the caller, is
 * awaitable from any fiber or plain thread. Never lost: once it returned
 * a future, fn runs exactly once, even if target is stopped or freed
 * first (during weft_loop_free or the join, where its first suspension
 * point returns -ECANCELED), so fn may own arg. NULL and errno: EINVAL,
 * ENOMEM, ESHUTDOWN (target's teardown has drained its queue for the
 * last time). */
WEFT_API weft_future *weft_submit(weft_loop *target, weft_fn fn, void *arg);
/* Any thread. Runs cb(arg) on loop's thread, outside fibers, in the order
 * queued. Many calls between two wake-ups of the loop cost one wake-up.
 * A call that returned 0 runs (at the latest in weft_loop_free). 0,
 * -EINVAL, -ENOMEM, -ESHUTDOWN (the loop's teardown has drained its
 * queue for the last time). */
WEFT_API int weft_call_soon_threadsafe(weft_loop *loop, void (*cb)(void *),
                                       void *arg);
/* A new loop running in a new thread until weft_loop_join_thread; it
 * waits for submissions when idle. 0 with *out set, or -errno. */
WEFT_API int weft_loop_start_thread(weft_loop **out);
/* Stops such a loop (if weft_loop_stop has not), lets its fibers and the
 * submissions still queued finish as weft_loop_free does, joins the
 * thread and frees the loop. 0, -EINVAL (not a started loop), or
 * -EDEADLK (called from the loop's own thread). */
WEFT_API int weft_loop_join_thread(weft_loop *loop);

typedef struct weft_executor weft_executor;

/* A pool of nthreads threads (0: min(32, CPUs + 4)) for blocking or
 * CPU-heavy work; threads start as work arrives. NULL and errno. */
WEFT_API weft_executor *weft_executor_new(unsigned nthreads);
/* Waits for running jobs, cancels queued ones (their futures fail with
 * -ECANCELED), joins the threads and frees the pool. Called from one of
 * ex's own jobs, it cancels the queued jobs and returns; the pool is
 * freed once that job has returned. */
WEFT_API void weft_executor_free(weft_executor *ex);
/* Any thread. Runs fn(arg) on ex (NULL: the default pool, made on first
 * use and joined at exit). Awaiting the future from a fiber never blocks
 * its loop; weft_cancel drops a job that has not started. NULL and errno.
 */
WEFT_API weft_future *weft_run_in_executor(weft_executor *ex, weft_fn fn,
                                           void *arg);

/* ---- Sync: for the fibers of one loop (the loop of their first use).
 * Blocking calls take timeout_ms and return 0, -ETIMEDOUT or -ECANCELED;
 * from a plain thread or another loop they return -EPERM. ---- */

typedef struct weft_mutex weft_mutex;
typedef struct weft_cond weft_cond;
typedef struct weft_sem weft_sem;
typedef struct weft_event weft_event;

/* A mutex with FIFO hand-off: unlock gives it to the longest waiter, so
 * no fiber barges ahead of one that waits. NULL and errno.
 *
 * A fiber that finishes (returns) while holding a mutex abandons it: the
 * mutex stays locked for good, since what it guards may be half-updated.
 * No other fiber ever owns it: lock waits (its timeout, cancellation and
 * deadlock detection apply; the deadlock report names the dead owner),
 * trylock gives -EBUSY, unlock -EPERM, and weft_mutex_free -EBUSY, as
 * for any locked mutex (its memory stays: the price of the bug). Debug
 * mode reports it when the fiber finishes, "weft: fiber 'x' finished
 * holding mutex 0x..", for mutexes locked while the loop was in debug
 * mode (lock and unlock track nothing otherwise: they stay as cheap). */
WEFT_API weft_mutex *weft_mutex_new(void);
/* -EBUSY (and not freed) while locked (abandoned included) or waited on,
 * by a weft_cond_wait that will lock it again too (even one already
 * signalled). The other primitives' _free give -EBUSY while a fiber waits
 * on them; a waiter already woken (by a signal, a release or a set) never
 * touches the primitive again. */
WEFT_API int weft_mutex_free(weft_mutex *m);
/* -EDEADLK if the calling fiber holds it already. */
WEFT_API int weft_mutex_lock(weft_mutex *m, int64_t timeout_ms);
/* 0, or -EBUSY without waiting. */
WEFT_API int weft_mutex_trylock(weft_mutex *m);
/* -EPERM unless the calling fiber holds it. */
WEFT_API int weft_mutex_unlock(weft_mutex *m);

WEFT_API weft_cond *weft_cond_new(void);
WEFT_API int weft_cond_free(weft_cond *c);
/* Unlocks m (held by the caller), waits for a signal, and locks m again
 * before returning, whatever it returns (0, -ETIMEDOUT, -ECANCELED). The
 * one exception: in weft_loop_free, once no fiber is left that could
 * unlock m (its holder is abandoned or stuck the same way), it returns
 * -ECANCELED without m (debug mode reports it), so the teardown ends. */
WEFT_API int weft_cond_wait(weft_cond *c, weft_mutex *m, int64_t timeout_ms);
/* Wakes the longest waiter / every waiter. */
WEFT_API int weft_cond_signal(weft_cond *c);
WEFT_API int weft_cond_broadcast(weft_cond *c);

/* A counting semaphore starting at value. */
WEFT_API weft_sem *weft_sem_new(unsigned value);
WEFT_API int weft_sem_free(weft_sem *s);
WEFT_API int weft_sem_acquire(weft_sem *s, int64_t timeout_ms);
/* Hands the unit to the longest waiter, if any. */
WEFT_API int weft_sem_release(weft_sem *s);

/* A flag fibers wait for (asyncio.Event); starts clear. */
WEFT_API weft_event *weft_event_new(void);
WEFT_API int weft_event_free(weft_event *e);
/* Sets it and wakes every waiter. */
WEFT_API int weft_event_set(weft_event *e);
WEFT_API int weft_event_clear(weft_event *e);
WEFT_API bool weft_event_is_set(weft_event *e);
/* Returns at once if set. */
WEFT_API int weft_event_wait(weft_event *e, int64_t timeout_ms);

/* ---- Channels: any thread. Fibers on any loop and plain threads send
 * and receive; fibers park, threads block. ---- */

typedef struct weft_chan weft_chan;

/* capacity 0: unbuffered (a send waits for its receiver). NULL, errno. */
WEFT_API weft_chan *weft_chan_new(size_t capacity);
/* Frees it; -EBUSY (and not freed) while anyone waits on it. A waiter
 * whose wait is already decided (by a close, send or receive) no longer
 * counts, even if it has not returned yet (its wake-up is queued on its
 * loop): the memory stays until that wake-up is delivered, so closing
 * and then freeing at once is safe. */
WEFT_API int weft_chan_free(weft_chan *ch);
/* 0 once item is buffered or taken; -EPIPE if closed; -ETIMEDOUT,
 * -ECANCELED. */
WEFT_API int weft_chan_send(weft_chan *ch, void *item, int64_t timeout_ms);
/* 0 with the item in *item; -EPIPE once closed and drained; -ETIMEDOUT,
 * -ECANCELED. */
WEFT_API int weft_chan_recv(weft_chan *ch, void **item, int64_t timeout_ms);
/* Closes it: waiting senders get -EPIPE, receivers drain what is
 * buffered, then get -EPIPE. -EPIPE if already closed. */
WEFT_API int weft_chan_close(weft_chan *ch);

/* ---- Timers and callbacks (loop thread; callbacks run outside fibers
 * and must not block) ---- */

/* Runs cb(arg) on the loop's next iteration. 0, -EINVAL, -ENOMEM. */
WEFT_API int weft_call_soon(weft_loop *loop, void (*cb)(void *), void *arg);
/* Runs cb(arg) after delay_ms. The handle stays valid until cb starts or
 * the timer is cancelled, whichever comes first. NULL and errno. */
WEFT_API weft_timer *weft_call_later(weft_loop *loop, int64_t delay_ms,
                                     void (*cb)(void *), void *arg);
/* Cancels a pending timer and frees it. 0, -EINVAL (NULL, fired or
 * cancelled), -EPERM from a thread other than the loop's. */
WEFT_API int weft_timer_cancel(weft_timer *t);

/* ---- IO: fibers suspend, plain threads block ----
 * Descriptors are switched to non-blocking on first use by a fiber. A
 * descriptor a fiber waited on is best closed with weft_close, which
 * wakes its waiters; a plain close() is safe too (each descriptor is
 * registered with the kernel once: if its number comes back for a new
 * one, the first wait on that may take up to 15 ms longer, while the loop
 * finds the registration gone; up to 640 ms for the number of a
 * long-lived descriptor whose waits often passed 10 ms, which the loop
 * checks less often). Writes never raise
 * SIGPIPE on sockets (MSG_NOSIGNAL; macOS has none: the sockets weft
 * makes get SO_NOSIGPIPE, and a send on another socket sets SIGPIPE as a
 * pipe's write does); for pipes, the first fiber write sets SIGPIPE to
 * SIG_IGN if it was SIG_DFL, so -EPIPE is returned. */

#define WEFT_READABLE 1u
#define WEFT_WRITABLE 2u

/* At most n bytes; 0 at end of file. -ETIMEDOUT, -ECANCELED, -errno. */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t n, int64_t timeout_ms);
/* Writes all n bytes and returns n, or fails (-ETIMEDOUT, -EPIPE, ...);
 * on failure an unknown prefix may have been written. */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t n,
                            int64_t timeout_ms);
WEFT_API ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt,
                            int64_t timeout_ms);
/* Writes every byte of every iovec, as weft_write. */
WEFT_API ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt,
                             int64_t timeout_ms);
WEFT_API ssize_t weft_recv(int fd, void *buf, size_t n, int flags,
                           int64_t timeout_ms);
/* Sends all n bytes (one datagram on a datagram socket). */
WEFT_API ssize_t weft_send(int fd, const void *buf, size_t n, int flags,
                           int64_t timeout_ms);
WEFT_API ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
                               struct sockaddr *from, socklen_t *fromlen,
                               int64_t timeout_ms);
WEFT_API ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *to, socklen_t tolen,
                             int64_t timeout_ms);
/* The new descriptor (non-blocking, close-on-exec), or -errno. Out of
 * descriptors (EMFILE, ENFILE), it backs off and retries instead of
 * spinning, until a descriptor frees or the timeout passes. */
WEFT_API int weft_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen,
                         int64_t timeout_ms);
/* weft_accept with flags (0, or any of WEFT_ACCEPT_*; others: -EINVAL).
 * WEFT_ACCEPT_NODELAY: the new socket gets TCP_NODELAY (ignored where
 * there is no Nagle to turn off, as on a Unix-domain socket).
 * A call makes sure the listening socket is non-blocking (one fcntl),
 * so a plain close() of a listening socket and the reuse of its number
 * for a new, blocking one are safe; except in a burst, where the check is
 * skipped: the running fiber's last weft_accept on that number returned a
 * connection, and no other fiber has run since (an acceptor that drains
 * the queue makes one fcntl per burst, not per connection). A fiber that
 * replaces its own listening socket in the middle of a burst must close
 * the old one with weft_close (which ends the burst), or make the new one
 * non-blocking (SOCK_NONBLOCK, or weft_tcp_listen). */
#define WEFT_ACCEPT_NODELAY 1u
WEFT_API int weft_accept_ex(int lfd, struct sockaddr *addr, socklen_t *addrlen,
                            int64_t timeout_ms, unsigned flags);
/* Connects and waits for the outcome: 0, -ECONNREFUSED, -ETIMEDOUT, ... */
WEFT_API int weft_connect(int fd, const struct sockaddr *addr,
                          socklen_t addrlen, int64_t timeout_ms);
/* Waits until fd is ready for events (WEFT_READABLE | WEFT_WRITABLE):
 * the ready subset, or -ETIMEDOUT, -ECANCELED, -EBADF. */
WEFT_API int weft_wait_fd(int fd, unsigned events, int64_t timeout_ms);
/* Wakes the fibers of this thread's loop waiting on fd with -EBADF, then
 * closes it. 0 or -errno from close. */
WEFT_API int weft_close(int fd);

/* TCP by name. host and port are strings ("127.0.0.1", "localhost",
 * "::1"; "8080", "http"). A numeric host and port resolve in place; a name
 * goes to the resolver, which runs on the default executor when called
 * from a fiber (never on the loop), inline in a plain thread, and is
 * refused with -EDEADLK on a loop's thread outside its fibers. Lookup
 * errors: -ENOENT (no such host or service), -EINVAL (not a TCP port, or
 * a number above 65535), -EAGAIN (the resolver is unreachable for now),
 * -ENOMEM, -EIO.
 *
 * weft_tcp_listen: a listening socket (non-blocking, close-on-exec,
 * SO_REUSEADDR) bound to the first address of host that accepts it: host
 * NULL, "" or "*" is every local address (getaddrinfo's first passive
 * address, 0.0.0.0 on glibc; "::" for IPv6); port "0" picks a free port
 * (getsockname tells it). backlog <= 0: SOMAXCONN. The descriptor, or
 * -errno (-EADDRINUSE, -EACCES, ...).
 *
 * weft_tcp_connect: tries host's addresses in order until one connects,
 * all within timeout_ms (lookup included; < 0: no limit). The connected
 * socket (non-blocking, close-on-exec, TCP_NODELAY), or the last error
 * (-ECONNREFUSED, -ENETUNREACH, ...), -ETIMEDOUT or -ECANCELED. */
WEFT_API int weft_tcp_listen(const char *host, const char *port, int backlog);
/* weft_tcp_listen with flags (0, or any of WEFT_LISTEN_*; others:
 * -EINVAL). WEFT_LISTEN_REUSEPORT: SO_REUSEPORT before bind, so that
 * several listening sockets (one per loop, say) share the port and the
 * kernel spreads new connections over them; -EOPNOTSUPP where the system
 * has no SO_REUSEPORT. */
#define WEFT_LISTEN_REUSEPORT 1u
WEFT_API int weft_tcp_listen_ex(const char *host, const char *port, int backlog,
                                unsigned flags);
WEFT_API int weft_tcp_connect(const char *host, const char *port,
                              int64_t timeout_ms);

/* ---- Signals: a wait like any other ----
 * Signals are given as an array of n signal numbers (SIGINT, SIGTERM, ...
 * from <signal.h>), so this header needs no POSIX types.
 *
 * weft_signal_block: blocks them in the calling thread (pthread_sigmask),
 * so that no handler or default action (for SIGINT and SIGTERM: exit)
 * takes them and they stay pending until a weft_signal_wait takes one.
 * They must be blocked in every thread of the process: call it at the
 * start of main, before any thread is created (threads inherit the mask,
 * weft's own included). 0, -EINVAL (n is 0, or a number is not a signal
 * that can be blocked: SIGKILL, SIGSTOP).
 *
 * weft_signal_wait: waits until one of them is pending, takes it, and
 * returns its number; -ETIMEDOUT, -ECANCELED; -EINVAL as above; -EDEADLK
 * on a loop's thread outside its fibers (unless timeout_ms is 0). A fiber
 * parks (its loop runs on: a signalfd on Linux, whatever the poller;
 * EVFILT_SIGNAL on the BSDs and macOS),
 * a plain thread blocks (sigtimedwait). A signal that arrived before the
 * call is taken at once; each arrival is taken by one wait only (several
 * arrivals of one signal before a wait may count as one).
 *
 * Graceful shutdown:
 *
 *     int sigs[] = {SIGINT, SIGTERM};
 *     weft_signal_block(sigs, 2);          // first thing in main
 *     ...
 *     // in a fiber: stop accepting, let connections finish, then stop.
 *     int sig = weft_signal_wait(sigs, 2, -1);
 */
WEFT_API int weft_signal_block(const int *signals, size_t n);
WEFT_API int weft_signal_wait(const int *signals, size_t n, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
