/* SPDX-License-Identifier: MIT */
/*
 * The executor: a pool of plain threads for blocking or CPU-heavy work
 * (asyncio's run_in_executor). Each job completes a future; a fiber that
 * awaits it parks, so its loop keeps running. Threads are started as
 * work arrives, up to the pool's size, and wait for more when idle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct job {
    struct job *next;
    weft_fn fn;
    void *arg;
    weft_future *fut; /* the job's reference */
};

struct weft_executor {
    pthread_mutex_t mu;      /* guards everything below */
    pthread_cond_t work;     /* a job was queued, or shutdown */
    struct job *head, *tail; /* queued, FIFO */
    size_t nqueued;          /* their number */
    unsigned max;            /* threads at most */
    unsigned nthreads, idle; /* started, and of them waiting */
    bool shutdown;
    pthread_t *threads; /* max of them */
};

/* The pool whose worker this thread is, or NULL. */
static WEFT__TLS weft_executor *worker_of;

static void destroy(weft_executor *ex);

static void *worker(void *arg)
{
    weft_executor *ex = arg;
    worker_of = ex;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        while (ex->head == NULL && !ex->shutdown) {
            ex->idle++;
            pthread_cond_wait(&ex->work, &ex->mu);
            ex->idle--;
        }
        if (ex->head == NULL)
            break; /* shut down, nothing left */
        struct job *j = ex->head;
        ex->head = j->next;
        if (ex->head == NULL)
            ex->tail = NULL;
        ex->nqueued--;
        pthread_mutex_unlock(&ex->mu);
        if (!weft_future_done(j->fut)) { /* not cancelled while queued */
            void *r = j->fn(j->arg);
            int err = WEFT_IS_ERR(r) ? WEFT_PTR_ERR(r) : 0;
            weft__future_complete(j->fut, err ? NULL : r, err);
        }
        weft_future_release(j->fut);
        weft__free(j, sizeof *j);
        if (WEFT__UNLIKELY(worker_of == NULL)) {
            /* The job freed the pool: the others end, we join them. */
            pthread_t self = pthread_self();
            for (unsigned i = 0; i < ex->nthreads; i++)
                if (!pthread_equal(ex->threads[i], self))
                    pthread_join(ex->threads[i], NULL);
            pthread_detach(self);
            destroy(ex);
            return NULL;
        }
        pthread_mutex_lock(&ex->mu);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

weft_executor *weft_executor_new(unsigned nthreads)
{
    if (nthreads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = (unsigned)(cpus > 0 ? cpus : 1) + 4;
        if (nthreads > 32)
            nthreads = 32;
    }
    weft_executor *ex = weft__zalloc(sizeof *ex);
    if (ex == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ex->threads = weft__zalloc(nthreads * sizeof *ex->threads);
    if (ex->threads == NULL) {
        weft__free(ex, sizeof *ex);
        errno = ENOMEM;
        return NULL;
    }
    ex->max = nthreads;
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->work, NULL);
    return ex;
}

void weft_executor_free(weft_executor *ex)
{
    if (ex == NULL)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->shutdown = true;
    struct job *queued = ex->head;
    ex->head = ex->tail = NULL;
    ex->nqueued = 0;
    pthread_cond_broadcast(&ex->work);
    unsigned n = ex->nthreads;
    pthread_mutex_unlock(&ex->mu);
    while (queued != NULL) { /* never started: cancelled */
        struct job *next = queued->next;
        weft__future_complete(queued->fut, NULL, -ECANCELED);
        weft_future_release(queued->fut);
        weft__free(queued, sizeof *queued);
        queued = next;
    }
    if (worker_of == ex) {
        /* Called from one of its own jobs: this worker finishes the job,
         * then joins the others and frees the pool (see worker). */
        worker_of = NULL;
        return;
    }
    for (unsigned i = 0; i < n; i++) /* running jobs finish first */
        pthread_join(ex->threads[i], NULL);
    destroy(ex);
}

static void destroy(weft_executor *ex)
{
    pthread_cond_destroy(&ex->work);
    pthread_mutex_destroy(&ex->mu);
    weft__free(ex->threads, ex->max * sizeof *ex->threads);
    weft__free(ex, sizeof *ex);
}

/* ---- the default pool ---- */

static weft_executor *default_ex;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_free(void)
{
    weft_executor_free(default_ex);
    default_ex = NULL;
}

static void default_make(void)
{
    default_ex = weft_executor_new(0);
    if (default_ex != NULL)
        atexit(default_free);
}

weft_future *weft_run_in_executor(weft_executor *ex, weft_fn fn, void *arg)
{
    if (fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (ex == NULL) {
        pthread_once(&default_once, default_make);
        if ((ex = default_ex) == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    weft_future *f = weft__future_new();
    struct job *j = weft__alloc(sizeof *j);
    if (f == NULL || j == NULL) {
        weft_future_release(f);
        if (j)
            weft__free(j, sizeof *j);
        errno = ENOMEM;
        return NULL;
    }
    weft__future_retain(f); /* the job's */
    *j = (struct job){NULL, fn, arg, f};
    int err;
    pthread_mutex_lock(&ex->mu);
    if (ex->shutdown) {
        err = EINVAL;
        goto unlock_fail;
    }
    if (ex->tail)
        ex->tail->next = j;
    else
        ex->head = j;
    ex->tail = j;
    ex->nqueued++;
    if (ex->idle > 0)
        pthread_cond_signal(&ex->work);
    /* More queued than idle threads to take them: one more thread. */
    if (ex->nqueued > ex->idle && ex->nthreads < ex->max &&
        pthread_create(&ex->threads[ex->nthreads], NULL, worker, ex) == 0)
        ex->nthreads++;
    if (ex->nthreads == 0) { /* not a single thread could start */
        ex->head = ex->tail = NULL;
        ex->nqueued = 0;
        err = EAGAIN;
        goto unlock_fail;
    }
    pthread_mutex_unlock(&ex->mu);
    return f;

unlock_fail:
    pthread_mutex_unlock(&ex->mu);
    weft_future_release(f); /* the job's */
    weft_future_release(f); /* the caller's */
    weft__free(j, sizeof *j);
    errno = err;
    return NULL;
}
