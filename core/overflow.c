/* SPDX-License-Identifier: MIT */
/*
 * The stack-overflow report. A fiber that runs off the bottom of its stack
 * faults in the guard below it (stack.c); a SIGSEGV/SIGBUS handler, run on
 * an alternate signal stack (the faulting one is full), tells such a fault
 * from any other by its address, writes "stack overflow in fiber 'name'"
 * with async-signal-safe calls only, and aborts. Any other fault goes to
 * the handler that was installed before ours, or to the default action.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static char *put_str(char *p, char *end, const char *s)
{
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

static char *put_u64(char *p, char *end, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0 && p < end)
        *p++ = tmp[--n];
    return p;
}

_Noreturn void weft__overflow_abort(const char *name, size_t stack_bytes)
{
    char msg[160], *p = msg, *end = msg + sizeof msg - 1;
    p = put_str(p, end, "weft: stack overflow in fiber '");
    p = put_str(p, end, name);
    p = put_str(p, end, "' (stack ");
    p = put_u64(p, end, stack_bytes);
    p = put_str(p, end, " bytes)\n");
    ssize_t unused = write(STDERR_FILENO, msg, (size_t)(p - msg));
    (void)unused;
    abort();
}

static struct sigaction old_segv, old_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

/* A fault on the running coroutine's guard, or just below it (a frame
 * larger than the guard can jump it; where nothing is mapped there, that
 * faults too), is an overflow. */
static bool is_overflow(const struct weft_coro *co, uintptr_t addr)
{
    uintptr_t lo = (uintptr_t)co->stack.map;
    uintptr_t guard_end = lo + weft__guard_size();
    return addr < guard_end && addr + 64 * 1024 >= lo;
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO) {
        old->sa_sigaction(sig, si, uc);
    } else if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
        /* Default action: return and let the fault happen again. */
        signal(sig, SIG_DFL);
    } else {
        old->sa_handler(sig);
    }
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    struct weft_coro *co = weft__thr.current;
    if (co != NULL && is_overflow(co, (uintptr_t)si->si_addr)) {
        char buf[32];
        weft__overflow_abort(weft__coro_name(co, buf),
                             weft_coro_stack_size(co));
    }
    chain(sig, si, uc);
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

/* The handler must run on another stack: the faulting one is full. */
void weft__overflow_init_thread(void)
{
    struct weft__thread *t = &weft__thr;
    pthread_once(&handler_once, install_handler);

    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return; /* the thread already has one; use it */
    size_t size = 64 * 1024;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return; /* overflow then dies by SIGSEGV, unreported */
    stack_t ss = {.ss_sp = p, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(p, size);
        return;
    }
    t->altstack = p;
    t->altstack_size = size;
}
