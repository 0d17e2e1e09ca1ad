/* SPDX-License-Identifier: MIT */
/*
 * Mutex, condition, semaphore and event for the fibers of one loop. They
 * live on the loop's thread, so they need no locks: a FIFO of parked
 * fibers each, and hand-off on release (the longest waiter gets the mutex
 * or the semaphore's unit directly, so nobody barges ahead of it).
 *
 * A primitive belongs to the loop of its first blocking use; a fiber of
 * another loop, or a plain thread, gets -EPERM instead of corrupting it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Every primitive starts with this, so one unlink serves them all. */
struct prim {
    struct weft_loop *loop; /* bound at first use */
    struct weft__waitq q;   /* parked fibers */
    const char *kind;       /* "mutex", "condition", ... for reports */
};

/* Binds p to the calling fiber's loop at its first blocking use, and
 * returns that fiber if it may use p: NULL with -EPERM from a plain thread
 * or a fiber of another loop. call names the API call for debug-mode
 * reports. */
static struct weft__fiber *bind_caller(struct prim *p, int *err,
                                       const char *call)
{
    struct weft__fiber *f = weft__fiber_current();
    if (f == NULL) {
        *err = -EPERM; /* a plain thread, or a loop outside fibers */
        if (p->loop != NULL && p->loop != weft__loop_tls)
            weft__debug_wrong_thread(p->loop, call, p->kind);
        else if (weft__debug())
            fprintf(stderr, "weft: %s: called outside a fiber\n", call);
        return NULL;
    }
    if (p->loop == NULL)
        p->loop = f->loop;
    if (p->loop != f->loop) {
        *err = -EPERM; /* a fiber of another loop */
        weft__debug_wrong_thread(p->loop, call, p->kind);
        return NULL;
    }
    return f;
}

/* Waking and setting need not come from a fiber (a callback of the loop
 * may signal), but must come from the loop's thread. */
static bool on_its_thread(const struct prim *p, const char *call)
{
    if (p->loop == NULL || p->loop == weft__loop_tls)
        return true;
    weft__debug_wrong_thread(p->loop, call, p->kind);
    return false;
}

static bool prim_unlink(struct weft__fiber *f)
{
    struct prim *p = f->wait_obj;
    weft__waitq_del(&p->q, f);
    return true;
}

/* Parks f in p's queue. 0 when woken by a hand-off or a signal. The
 * callers tail-call it, so that it returns straight to user code, through
 * the return that is predicted after a switch (WEFT__RESUME_RETURN). */
WEFT__RESUME_RETURN __attribute__((noinline)) static int
wait_in(struct prim *p, struct weft__fiber *f, int64_t timeout_ms)
{
    weft__waitq_push(&p->q, f);
    int64_t deadline = weft__wait_deadline(timeout_ms);
    return weft__park(f, WEFT__WAIT_SYNC, p, deadline, prim_unlink);
}

static void *prim_new(size_t size, const char *kind)
{
    struct prim *p = weft__zalloc(size);
    if (p == NULL)
        errno = ENOMEM;
    else
        p->kind = kind;
    return p;
}

/* Any thread may free an idle primitive; one with waiters stays. */
static int prim_free(struct prim *p, size_t size, bool busy)
{
    if (p == NULL)
        return -EINVAL;
    if (busy || !weft__waitq_empty(&p->q))
        return -EBUSY;
    weft__free(p, size);
    return 0;
}

/* ---- mutex ---- */

/*
 * A mutex records its owner by the fiber's id (f->id: unique in its
 * loop, never reused), not by a pointer. When a fiber finishes still
 * holding it, the mutex stays locked by an id no fiber will have again:
 * abandoned (robust mutexes' view), and a new fiber that the allocator
 * put at the dead one's address is not taken for its owner. Lock and
 * unlock pay nothing for it. In debug mode each fiber also lists the
 * mutexes it holds (f->held), so that fiber_finish reports the ones it
 * abandons and they keep its name for later reports.
 */
struct weft_mutex {
    struct prim p;
    uint64_t owner; /* the owner's id; 0: unlocked */
    unsigned ncond; /* in weft_cond_wait with it: they will lock it again */
    bool abandoned; /* debug: its owner finished holding it */
    /* Debug mode: in its owner's f->held list (held_pprev NULL: in none). */
    struct weft_mutex *held_next, **held_pprev;
    char dead_owner[32]; /* abandoned: who left it, for reports */
};

/* Debug mode: m joins the list of the mutexes f holds. */
__attribute__((cold, noinline)) static void track(weft_mutex *m,
                                                  struct weft__fiber *f)
{
    m->held_next = f->held;
    m->held_pprev = &f->held;
    if (f->held != NULL)
        f->held->held_pprev = &m->held_next;
    f->held = m;
}

__attribute__((cold, noinline)) static void untrack(weft_mutex *m)
{
    *m->held_pprev = m->held_next;
    if (m->held_next != NULL)
        m->held_next->held_pprev = m->held_pprev;
    m->held_pprev = NULL;
}

/* m (unowned) becomes f's. */
static inline void own(weft_mutex *m, struct weft__fiber *f)
{
    m->owner = f->id;
    if (WEFT__UNLIKELY(f->loop->debug))
        track(m, f);
}

weft_mutex *weft_mutex_new(void)
{
    return prim_new(sizeof(struct weft_mutex), "mutex");
}

int weft_mutex_free(weft_mutex *m)
{
    /* A condition waiter, even one already signalled, will lock it
     * again. An abandoned mutex stays locked, so it stays too. */
    return prim_free(m ? &m->p : NULL, sizeof *m,
                     m && (m->owner != 0 || m->ncond > 0));
}

/* Inlined in both calls: the uncontended lock is one call to bind_caller(). */
__attribute__((always_inline)) static inline int trylock(weft_mutex *m)
{
    if (m == NULL)
        return -EINVAL;
    int err;
    struct weft__fiber *f = bind_caller(&m->p, &err, "weft_mutex_lock");
    if (f == NULL)
        return err;
    if (m->owner != 0)
        return m->owner == f->id ? -EDEADLK : -EBUSY;
    own(m, f);
    return 0;
}

int weft_mutex_trylock(weft_mutex *m)
{
    return trylock(m);
}

int weft_mutex_lock(weft_mutex *m, int64_t timeout_ms)
{
    int rc = trylock(m);
    if (rc != -EBUSY)
        return rc;
    struct weft__fiber *f = weft__fiber_current();
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    rc = wait_in(&m->p, f, timeout_ms);
    /* 0: the unlocking fiber handed it to us (m->owner == f->id). */
    return rc;
}

int weft_mutex_unlock(weft_mutex *m)
{
    if (m == NULL)
        return -EINVAL;
    struct weft__fiber *f = weft__fiber_current();
    if (f == NULL || m->owner != f->id) {
        if (!on_its_thread(&m->p, "weft_mutex_unlock"))
            return -EPERM; /* reported */
        if (m->p.loop != NULL && m->p.loop->debug)
            fprintf(stderr,
                    "weft: weft_mutex_unlock: mutex %p is not held by the "
                    "caller\n",
                    (void *)m);
        return -EPERM;
    }
    if (WEFT__UNLIKELY(m->held_pprev != NULL))
        untrack(m);
    struct weft__fiber *next = weft__waitq_pop(&m->p.q);
    if (next) { /* hand-off: FIFO, no barging */
        own(m, next);
        weft__wake(next, 0);
    } else {
        m->owner = 0;
    }
    return 0;
}

void weft__mutexes_abandon(struct weft__fiber *f)
{
    char buf[32];
    const char *name = weft__fiber_name(f, buf);
    while (f->held != NULL) {
        weft_mutex *m = f->held;
        untrack(m);
        m->abandoned = true;
        snprintf(m->dead_owner, sizeof m->dead_owner, "%s", name);
        if (f->loop->debug)
            fprintf(stderr,
                    "weft: fiber '%s' finished holding mutex %p; it stays "
                    "locked for good (abandoned)\n",
                    name, (void *)m);
    }
}

/* Locks m for f whatever happens: cond_wait must return holding it. The
 * wait ignores timeouts and cancellation; only weft_loop_free ends it,
 * when no fiber is left that could unlock m (weft__relock_give_up).
 * True when f holds m again. */
static bool relock(weft_mutex *m, struct weft__fiber *f)
{
    if (m->owner == 0) {
        own(m, f);
        return true;
    }
    bool saved = f->nocancel;
    f->nocancel = true;
    weft__waitq_push(&m->p.q, f);
    weft__park(f, WEFT__WAIT_SYNC, &m->p, -1, prim_unlink);
    f->nocancel = saved;
    return m->owner == f->id;
}

void weft__relock_give_up(struct weft__fiber *f)
{
    if (f->loop->debug) {
        char buf[32], what[160];
        weft__sync_describe(f->wait_obj, what, sizeof what);
        fprintf(stderr,
                "weft: weft_loop_free: fiber '%s' cannot re-lock %s; its "
                "weft_cond_wait returns -ECANCELED without the mutex\n",
                weft__fiber_name(f, buf), what);
    }
    prim_unlink(f);
    weft__wake(f, -ECANCELED);
}

/* ---- condition ---- */

struct weft_cond {
    struct prim p;
};

weft_cond *weft_cond_new(void)
{
    return prim_new(sizeof(struct weft_cond), "condition");
}

int weft_cond_free(weft_cond *c)
{
    return prim_free(c ? &c->p : NULL, sizeof *c, false);
}

/* weft_cond_wait's wait, tail-called like wait_in. */
WEFT__RESUME_RETURN __attribute__((noinline)) static int
cond_park(weft_cond *c, weft_mutex *m, struct weft__fiber *f,
          int64_t timeout_ms)
{
    weft__waitq_push(&c->p.q, f);
    m->ncond++;
    weft_mutex_unlock(m);
    int64_t deadline = weft__wait_deadline(timeout_ms);
    int rc = weft__park(f, WEFT__WAIT_SYNC, &c->p, deadline, prim_unlink);
    bool held = relock(m, f);
    m->ncond--;
    if (WEFT__UNLIKELY(!held))
        return -ECANCELED; /* its loop is being freed */
    return rc;
}

int weft_cond_wait(weft_cond *c, weft_mutex *m, int64_t timeout_ms)
{
    if (c == NULL || m == NULL)
        return -EINVAL;
    int err;
    struct weft__fiber *f = bind_caller(&c->p, &err, "weft_cond_wait");
    if (f == NULL)
        return err;
    if (m->owner != f->id)
        return -EPERM;
    return cond_park(c, m, f, timeout_ms);
}

int weft_cond_signal(weft_cond *c)
{
    if (c == NULL)
        return -EINVAL;
    if (!on_its_thread(&c->p, "weft_cond_signal"))
        return -EPERM;
    struct weft__fiber *f = weft__waitq_pop(&c->p.q);
    if (f)
        weft__wake(f, 0);
    return 0;
}

int weft_cond_broadcast(weft_cond *c)
{
    if (c == NULL)
        return -EINVAL;
    if (!on_its_thread(&c->p, "weft_cond_broadcast"))
        return -EPERM;
    struct weft__fiber *f;
    while ((f = weft__waitq_pop(&c->p.q)) != NULL)
        weft__wake(f, 0);
    return 0;
}

/* ---- semaphore ---- */

struct weft_sem {
    struct prim p;
    unsigned value;
};

weft_sem *weft_sem_new(unsigned value)
{
    weft_sem *s = prim_new(sizeof *s, "semaphore");
    if (s)
        s->value = value;
    return s;
}

int weft_sem_free(weft_sem *s)
{
    return prim_free(s ? &s->p : NULL, sizeof *s, false);
}

int weft_sem_acquire(weft_sem *s, int64_t timeout_ms)
{
    if (s == NULL)
        return -EINVAL;
    int err;
    struct weft__fiber *f = bind_caller(&s->p, &err, "weft_sem_acquire");
    if (f == NULL)
        return err;
    if (s->value > 0 && weft__waitq_empty(&s->p.q)) {
        s->value--;
        return 0;
    }
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    return wait_in(&s->p, f, timeout_ms); /* 0: a release handed us one */
}

int weft_sem_release(weft_sem *s)
{
    if (s == NULL)
        return -EINVAL;
    if (!on_its_thread(&s->p, "weft_sem_release"))
        return -EPERM;
    struct weft__fiber *f = weft__waitq_pop(&s->p.q);
    if (f) {
        weft__wake(f, 0);
        return 0;
    }
    if (s->value == UINT32_MAX)
        return -EOVERFLOW;
    s->value++;
    return 0;
}

/* ---- event ---- */

struct weft_event {
    struct prim p;
    bool set;
};

weft_event *weft_event_new(void)
{
    return prim_new(sizeof(struct weft_event), "event");
}

int weft_event_free(weft_event *e)
{
    return prim_free(e ? &e->p : NULL, sizeof *e, false);
}

int weft_event_set(weft_event *e)
{
    if (e == NULL)
        return -EINVAL;
    if (!on_its_thread(&e->p, "weft_event_set"))
        return -EPERM;
    e->set = true;
    struct weft__fiber *f;
    while ((f = weft__waitq_pop(&e->p.q)) != NULL)
        weft__wake(f, 0);
    return 0;
}

int weft_event_clear(weft_event *e)
{
    if (e == NULL)
        return -EINVAL;
    if (!on_its_thread(&e->p, "weft_event_clear"))
        return -EPERM;
    e->set = false;
    return 0;
}

bool weft_event_is_set(weft_event *e)
{
    return e != NULL && e->set;
}

int weft_event_wait(weft_event *e, int64_t timeout_ms)
{
    if (e == NULL)
        return -EINVAL;
    int err;
    struct weft__fiber *f = bind_caller(&e->p, &err, "weft_event_wait");
    if (f == NULL)
        return err;
    if (e->set)
        return 0;
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    return wait_in(&e->p, f, timeout_ms);
}

void weft__sync_describe(void *prim, char *out, size_t len)
{
    struct prim *p = prim;
    if (strcmp(p->kind, "mutex") == 0) {
        weft_mutex *m = prim;
        const struct weft__fiber *owner = NULL;
        if (p->loop != NULL && m->owner != 0) {
            weft__loop_each_fiber (f, p->loop)
                if (f->id == m->owner)
                    owner = f;
        }
        char buf[32];
        if (owner != NULL)
            snprintf(out, len, "mutex %p held by fiber '%s'", prim,
                     weft__fiber_name(owner, buf));
        else if (m->owner == 0)
            snprintf(out, len, "mutex %p held by (nobody)", prim);
        else if (m->abandoned)
            snprintf(out, len,
                     "mutex %p abandoned by fiber '%s' (it finished holding "
                     "it)",
                     prim, m->dead_owner);
        else
            snprintf(out, len,
                     "mutex %p abandoned by a fiber that finished holding it",
                     prim);
    } else {
        snprintf(out, len, "%s %p", p->kind, prim);
    }
}
