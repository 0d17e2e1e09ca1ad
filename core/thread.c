/* SPDX-License-Identifier: MIT */
/*
 * The calling thread's number as the system's tools show it (gdb, ps -L,
 * top -H), for the reports that name a thread. The one place that asks
 * each system for it: Linux's gettid has no libc wrapper before glibc
 * 2.30, and the BSDs and macOS each have a call of their own.
 */
#if defined(__linux__)
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__FreeBSD__) || defined(__DragonFly__)
#include <pthread_np.h>
#elif defined(__NetBSD__)
#include <lwp.h>
#elif defined(__OpenBSD__)
#include <unistd.h>
#endif
#include <pthread.h>
#include <stdint.h>

#include "internal.h"

long weft__thread_id(void)
{
#if defined(__linux__)
    return (long)syscall(SYS_gettid);
#elif defined(__FreeBSD__) || defined(__DragonFly__)
    return (long)pthread_getthreadid_np();
#elif defined(__APPLE__)
    uint64_t id = 0;
    pthread_threadid_np(NULL, &id);
    return (long)id;
#elif defined(__NetBSD__)
    return (long)_lwp_self();
#elif defined(__OpenBSD__)
    return (long)getthrid();
#else
    /* Not the system's number, but one per live thread. */
    return (long)(uintptr_t)pthread_self();
#endif
}
