/* SPDX-License-Identifier: MIT */
/*
 * The one intrusive list of weft: a link in each element, the head and
 * tail in the list, NULL at both ends. Every queue of waiters (fibers
 * parked on a descriptor or a sync primitive, a future's waiters, a
 * channel's senders and receivers) and the loop's list of live fibers is
 * one. All operations are O(1); an element knows nothing of the list it
 * is in, so the caller says which (each element is in one list per link
 * at a time).
 */
#ifndef WEFT__CORE_LIST_H
#define WEFT__CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct weft__link {
    struct weft__link *next, *prev;
};

struct weft__list {
    struct weft__link *head, *tail;
};

/* The element of type holding link p as member. */
#define weft__container_of(p, type, member)                                    \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* Each link of list l, in order, as pos (the body may not unlink pos:
 * walk with weft__list_next read before that instead). */
#define weft__list_each(pos, l)                                                \
    for (struct weft__link *pos = (l)->head; pos != NULL; pos = pos->next)

static inline bool weft__list_empty(const struct weft__list *l)
{
    return l->head == NULL;
}

/* Appends n (FIFO order). */
static inline void weft__list_push(struct weft__list *l, struct weft__link *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

/* Prepends n (LIFO order). */
static inline void weft__list_push_front(struct weft__list *l,
                                         struct weft__link *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head != NULL)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

/* Unlinks n, which is in l. */
static inline void weft__list_del(struct weft__list *l, struct weft__link *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->next = n->prev = NULL;
}

/* Unlinks and returns the first link; NULL if l is empty. */
static inline struct weft__link *weft__list_pop(struct weft__list *l)
{
    struct weft__link *n = l->head;
    if (n != NULL) { /* weft__list_del, knowing n is first */
        l->head = n->next;
        if (n->next != NULL)
            n->next->prev = NULL;
        else
            l->tail = NULL;
        n->next = NULL;
    }
    return n;
}

#endif /* WEFT__CORE_LIST_H */
