/* SPDX-License-Identifier: MIT */
/*
 * FreeBSD's <sys/event.h> declarations (kqueue(2)), only what
 * io/poll_kqueue.c and io/signal.c use, so `make check-kqueue` can
 * type-check the kqueue code on Linux. Nothing links against this: it cannot
 * run here.
 */
#ifndef WEFT_COMPAT_SYS_EVENT_H
#define WEFT_COMPAT_SYS_EVENT_H
#include <stdint.h>
#include <time.h>
struct kevent {
    uintptr_t ident;
    short filter;
    unsigned short flags;
    unsigned int fflags;
    int64_t data;
    void *udata;
    uint64_t ext[4];
};
#define EV_SET(kevp_, a, b, c, d, e, f)                                        \
    do {                                                                       \
        struct kevent *kevp = (kevp_);                                         \
        (kevp)->ident = (a);                                                   \
        (kevp)->filter = (b);                                                  \
        (kevp)->flags = (c);                                                   \
        (kevp)->fflags = (d);                                                  \
        (kevp)->data = (e);                                                    \
        (kevp)->udata = (f);                                                   \
    } while (0)
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_SIGNAL (-6)
#define EVFILT_TIMER (-7)
#define EVFILT_USER (-11)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_ERROR 0x4000
#define EV_EOF 0x8000
#define NOTE_TRIGGER 0x01000000
#define NOTE_NSECONDS 0x00000008
int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges,
           struct kevent *eventlist, int nevents,
           const struct timespec *timeout);
#endif
