/* SPDX-License-Identifier: MIT */
/*
 * Signals as a wait: weft_signal_wait takes one pending signal of a set,
 * weft_signal_block blocks a set in the calling thread.
 *
 * The signals must be blocked in every thread (the contract in weft.h):
 * then nothing else takes them, and they stay pending until a wait takes
 * one. A fiber waits on a descriptor that turns readable when one is
 * pending, so its loop runs on meanwhile:
 *   - Linux: a signalfd for the set, read once readable (the read takes
 *     the signal);
 *   - the BSDs and macOS: a kqueue of EVFILT_SIGNAL filters, one per
 *     signal, readable once one arrived; sigwait then takes it (it is
 *     pending, so sigwait returns at once).
 * A signal that arrived before the wait began is pending already: the
 * first try, before any wait, takes it.
 * A plain thread blocks in sigtimedwait (sigwait where there is none).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/signalfd.h>
#else
#include <sys/event.h>
#endif

#include "../sched/internal.h"
#include "internal.h"

/* The set of n signal numbers: 0, or -EINVAL if n is 0 or a number is
 * not a signal that can be blocked and waited for. */
static int to_set(const int *signals, size_t n, sigset_t *set)
{
    if (signals == NULL || n == 0)
        return -EINVAL;
    sigemptyset(set);
    for (size_t i = 0; i < n; i++) {
        int s = signals[i];
        if (s <= 0 || s >= NSIG || s == SIGKILL || s == SIGSTOP ||
            sigaddset(set, s) != 0)
            return -EINVAL;
    }
    return 0;
}

int weft_signal_block(const int *signals, size_t n)
{
    sigset_t set;
    int rc = to_set(signals, n, &set);
    if (rc < 0)
        return rc;
    return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* A signal of set pending now, taken; 0 if none. A plain thread's
 * sigtimedwait with no wait, or sigpending + sigwait where there is no
 * sigtimedwait. */
static int take_pending(const sigset_t *set)
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__)
    struct timespec zero = {0, 0};
    int s;
    while ((s = sigtimedwait(set, NULL, &zero)) < 0 && errno == EINTR)
        ;
    return s > 0 ? s : 0;
#else
    sigset_t pending;
    if (sigpending(&pending) != 0)
        return 0;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(set, s) == 1 && sigismember(&pending, s) == 1) {
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, s);
            int got;
            if (sigwait(&one, &got) == 0)
                return got;
        }
    return 0;
#endif
}

/* A plain thread: blocks until a signal of set or deadline. */
static int thread_wait(const sigset_t *set, int64_t deadline)
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__)
    for (;;) {
        int s;
        if (deadline < 0) {
            s = sigwaitinfo(set, NULL);
        } else {
            int64_t left = deadline - weft__now_ns();
            if (left < 0)
                left = 0;
            struct timespec ts = {.tv_sec = left / 1000000000,
                                  .tv_nsec = left % 1000000000};
            s = sigtimedwait(set, NULL, &ts);
        }
        if (s > 0)
            return s;
        if (errno == EAGAIN)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
#else
    /* No sigtimedwait: poll what is pending, sleeping in between. */
    for (;;) {
        int s = take_pending(set);
        if (s > 0)
            return s;
        if (deadline >= 0 && weft__now_ns() >= deadline)
            return -ETIMEDOUT;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
#endif
}

/* A descriptor that turns readable when a signal of set is pending. */
static int signal_fd(const sigset_t *set)
{
#if defined(__linux__)
    int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
#else
    int kq = kqueue();
    if (kq < 0)
        return -errno;
    for (int s = 1; s < NSIG; s++) {
        if (sigismember(set, s) != 1)
            continue;
        struct kevent ev;
        EV_SET(&ev, s, EVFILT_SIGNAL, EV_ADD | EV_CLEAR, 0, 0, NULL);
        if (kevent(kq, &ev, 1, NULL, 0, NULL) < 0) {
            int err = errno;
            close(kq);
            return -err;
        }
    }
    return kq;
#endif
}

int weft_signal_wait(const int *signals, size_t n, int64_t timeout_ms)
{
    sigset_t sigs, *set = &sigs;
    int rc = to_set(signals, n, set);
    if (rc < 0)
        return rc;
    int64_t deadline = weft__wait_deadline(timeout_ms);
    if (weft__fiber_current() == NULL) {
        if (weft__loop_tls != NULL && timeout_ms != 0)
            return -EDEADLK; /* blocking would freeze the loop */
        return thread_wait(set, timeout_ms == 0 ? 0 : deadline);
    }
    int s = take_pending(set);
    if (s > 0)
        return s;
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    int fd = signal_fd(set);
    if (fd < 0)
        return fd;
    for (;;) {
#if defined(__linux__)
        struct signalfd_siginfo si;
        ssize_t got = read(fd, &si, sizeof si);
        if (got == (ssize_t)sizeof si) {
            rc = (int)si.ssi_signo;
            break;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno != EAGAIN) {
            rc = -errno;
            break;
        }
#else
        /* The kqueue says a signal arrived; it stays pending (blocked)
         * until taken. */
        if ((rc = take_pending(set)) > 0)
            break;
#endif
        rc = weft__wait_fd(fd, WEFT_READABLE, deadline, true);
        if (rc < 0)
            break;
    }
    weft_close(fd); /* forgets its registration, and closes it */
    return rc;
}
