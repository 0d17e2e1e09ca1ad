/* SPDX-License-Identifier: MIT */
/* Debug mode: each report, exactly, from a forked child; and silence in a
 * clean run. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "../core/internal.h" /* weft__stack_force_guard */
#include "weft.h"

static void busy_ms(int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 <
           ms);
}

static weft_loop *debug_loop(void)
{
    weft_loop *loop = weft_loop_new();
    ck_assert_int_eq(weft_loop_set_debug(loop, true), 0);
    ck_assert_int_eq(weft_loop_set_slow_ms(loop, 20), 0);
    return loop;
}

#define CHILD(name) static void name(void *unused)
#define RUN(child, out)                                                        \
    do {                                                                       \
        int st_ = run_child(child, NULL, out, sizeof out);                     \
        ck_assert_msg(WIFEXITED(st_) && WEXITSTATUS(st_) == 0,                 \
                      "child status %#x: %s", st_, out);                       \
    } while (0)

/* ---- slow callbacks and fibers ---- */

static void slow_cb(void *arg)
{
    (void)arg;
    busy_ms(60);
}

CHILD(slow_callback_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    weft_call_soon(loop, slow_cb, NULL);
    weft_loop_run(loop);
    weft_loop_free(loop);
}

START_TEST(a_slow_callback_is_reported_with_its_time)
{
    char out[1024];
    RUN(slow_callback_child, out);
    ck_assert_msg(strstr(out, "weft: slow callback 0x") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "without returning (slow_ms 20)") != NULL, "%s",
                  out);
}
END_TEST

static void *hog(void *arg)
{
    (void)arg;
    busy_ms(60); /* no yield */
    weft_yield();
    return NULL;
}

CHILD(slow_fiber_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    weft_spawn_opts o = {.name = "hog"};
    weft_future_release(weft_spawn_ex(loop, hog, NULL, &o));
    weft_loop_run(loop);
    weft_loop_free(loop);
}

START_TEST(a_slow_fiber_is_reported_with_its_name_and_time)
{
    char out[1024];
    RUN(slow_fiber_child, out);
    ck_assert_msg(strstr(out, "weft: slow fiber 'hog' ran ") != NULL, "%s",
                  out);
    ck_assert_msg(strstr(out, " ms without yielding (slow_ms 20)") != NULL,
                  "%s", out);
}
END_TEST

/* ---- wrong thread ---- */

static weft_mutex *shared_mutex;

static void *lock_it(void *arg)
{
    (void)arg;
    return WEFT_ERR_PTR(weft_mutex_lock(shared_mutex, 0));
}

static void *hold_it(void *arg)
{
    (void)arg;
    weft_mutex_lock(shared_mutex, -1);
    weft_mutex_unlock(shared_mutex);
    return NULL;
}

CHILD(wrong_thread_child)
{
    (void)unused;
    setenv("WEFT_DEBUG", "1", 1);
    shared_mutex = weft_mutex_new();
    weft_loop *a, *b; /* two loops, each in a thread of its own */
    weft_loop_start_thread(&a);
    weft_loop_start_thread(&b);
    weft_future *f = weft_submit(a, hold_it, NULL); /* binds it to a */
    weft_await(f, NULL);
    weft_future_release(f);
    f = weft_submit(b, lock_it, NULL);
    int rc = weft_await(f, NULL);
    weft_future_release(f);
    weft_loop_join_thread(b);
    weft_loop_join_thread(a);
    _exit(rc == -EPERM ? 0 : 3);
}

START_TEST(a_mutex_locked_from_the_wrong_thread_fails_and_says_so)
{
    char out[1024];
    RUN(wrong_thread_child, out);
    ck_assert_msg(strstr(out, "weft: weft_mutex_lock: mutex belongs to loop "
                              "0x") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, " of thread ") != NULL, "%s", out);
    ck_assert_msg(strstr(out, ", called from thread ") != NULL, "%s", out);
}
END_TEST

/* An fd a fiber of one loop waits on, closed from another thread. */
static int watched_fd;

static void *wait_on_fd(void *arg)
{
    (void)arg;
    char c;
    return WEFT_ERR_PTR((int)weft_read(watched_fd, &c, 1, 2000));
}

CHILD(fd_wrong_thread_child)
{
    (void)unused;
    setenv("WEFT_DEBUG", "1", 1);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        _exit(2);
    watched_fd = sv[0];
    weft_loop *a;
    weft_loop_start_thread(&a);
    weft_future *f = weft_submit(a, wait_on_fd, NULL);
    usleep(50000);                 /* it waits on the fd now */
    int rc = weft_close(sv[0]);    /* from the wrong thread */
    if (write(sv[1], "x", 1) != 1) /* let the reader finish */
        _exit(2);
    void *r;
    weft_await(f, &r);
    weft_future_release(f);
    weft_loop_join_thread(a);
    _exit(rc == -EPERM && (intptr_t)r == 1 ? 0 : 3);
}

START_TEST(an_fd_watched_by_a_loop_is_not_closed_from_another_thread)
{
    char out[1024];
    RUN(fd_wrong_thread_child, out);
    ck_assert_msg(strstr(out, "weft: weft_close: fd ") != NULL, "%s", out);
    ck_assert_msg(strstr(out, " is watched by loop 0x") != NULL, "%s", out);
}
END_TEST

/* ---- futures nobody awaited ---- */

static void *fails_eio(void *arg)
{
    (void)arg;
    return WEFT_ERR_PTR(-EIO);
}

CHILD(unawaited_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    weft_spawn_opts o = {.name = "forgotten"};
    weft_future_release(weft_spawn_ex(loop, fails_eio, NULL, &o));
    weft_loop_run(loop);
    /* Awaited: not reported. */
    weft_spawn_opts o2 = {.name = "checked"};
    weft_future *g = weft_spawn_ex(loop, fails_eio, NULL, &o2);
    weft_loop_run(loop);
    weft_await(g, NULL);
    weft_future_release(g);
    weft_loop_free(loop);
}

START_TEST(a_failed_task_nobody_awaited_is_reported)
{
    char out[1024];
    RUN(unawaited_child, out);
    ck_assert_msg(strstr(out, "weft: the future of fiber 'forgotten' failed "
                              "with Input/output error (-5) and was released "
                              "without being awaited") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "'checked'") == NULL, "%s", out);
}
END_TEST

/* ---- deadlock and leaks ---- */

static weft_mutex *m2[2];

static void *cross(void *arg)
{
    int i = (int)(intptr_t)arg;
    weft_mutex_lock(m2[i], -1);
    weft_yield();
    if (weft_mutex_lock(m2[1 - i], -1) == 0)
        weft_mutex_unlock(m2[1 - i]);
    weft_mutex_unlock(m2[i]);
    return NULL;
}

CHILD(deadlock_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    m2[0] = weft_mutex_new();
    m2[1] = weft_mutex_new();
    weft_spawn_opts a = {.name = "alice"}, b = {.name = "bob"};
    weft_future_release(weft_spawn_ex(loop, cross, (void *)0, &a));
    weft_future_release(weft_spawn_ex(loop, cross, (void *)1, &b));
    int rc = weft_loop_run(loop);
    weft_loop_free(loop);
    _exit(rc == -EDEADLK ? 0 : 3);
}

START_TEST(a_deadlock_lists_each_blocked_fiber_and_what_it_waits_on)
{
    char out[2048];
    RUN(deadlock_child, out);
    ck_assert_msg(strstr(out, "weft: deadlock: loop 0x") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "has 2 blocked fibers and nothing that could "
                              "wake them") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "weft:   fiber 'alice' waits on mutex 0x") !=
                      NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, " held by fiber 'bob'") != NULL, "%s", out);
    ck_assert_msg(strstr(out, " held by fiber 'alice'") != NULL, "%s", out);
    /* weft_loop_free lists them as leaked, then cancels them. */
    ck_assert_msg(strstr(out, "weft: weft_loop_free: 2 fibers still alive") !=
                      NULL,
                  "%s", out);
}
END_TEST

/* ---- stacks ---- */

static void *deep(void *arg)
{
    (void)arg;
    volatile char big[52 * 1024]; /* most of a 64 KiB stack */
    for (size_t i = 0; i < sizeof big; i += 64)
        big[i] = (char)i;
    return (void *)(uintptr_t)big[64];
}

CHILD(high_stack_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    weft_spawn_opts o = {.name = "deep", .stack_size = 64 * 1024};
    weft_future_release(weft_spawn_ex(loop, deep, NULL, &o));
    weft_loop_run(loop);
    weft_loop_free(loop);
}

START_TEST(high_stack_use_is_reported_with_the_high_water_mark)
{
    char out[1024];
    RUN(high_stack_child, out);
    ck_assert_msg(strstr(out, "weft: fiber 'deep' used ") != NULL, "%s", out);
    ck_assert_msg(strstr(out, " of its 65536 stack bytes (8") != NULL, "%s",
                  out);
    ck_assert_msg(strstr(out, "stack bytes (") != NULL, "%s", out);
}
END_TEST

static volatile int depth_limit = 1 << 30; /* never reached */

static int recurse(int n)
{
    volatile char pad[256];
    pad[0] = (char)n;
    if (n >= depth_limit)
        return 0;
    return recurse(n + 1) + pad[0];
}

static void *runaway(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse(0);
}

CHILD(overflow_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    weft_spawn_opts o = {.name = "runaway", .stack_size = WEFT_STACK_MIN};
    weft_future_release(weft_spawn_ex(loop, runaway, NULL, &o));
    weft_loop_run(loop);
    _exit(4); /* not reached */
}

/* Runs child, which must abort with report on its stderr. */
static void expect_abort_with(void (*child)(void *), const char *report)
{
    char out[2048];
    int st = run_child(child, NULL, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x: %s",
                  st, out);
    ck_assert_msg(strstr(out, report) != NULL, "%s", out);
}

START_TEST(deep_recursion_in_a_named_fiber_is_named_and_aborts)
{
    expect_abort_with(overflow_child, "weft: stack overflow in fiber "
                                      "'runaway' (stack 16384 bytes)");
}
END_TEST

/* ---- canary stacks (no guard left: vm.max_map_count, mmap failures) ---- */

/* A size no earlier test pooled: the stacks are mapped with the canary. */
#define CANARY_STACK (24 * 1024)

static void *yields_thrice(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        weft_yield();
    return NULL;
}

static void *uses_most(void *arg)
{
    (void)arg;
    volatile char big[CANARY_STACK - 5 * 1024];
    for (size_t i = 0; i < sizeof big; i += 64)
        big[i] = (char)i;
    weft_yield();
    return (void *)(uintptr_t)big[64];
}

CHILD(canary_debug_child)
{
    (void)unused;
    weft__stack_force_guard(WEFT__GUARD_CANARY);
    weft_loop *loop = debug_loop();
    weft_spawn_opts a = {.name = "calm", .stack_size = CANARY_STACK};
    weft_spawn_opts b = {.name = "deep", .stack_size = CANARY_STACK};
    weft_future_release(weft_spawn_ex(loop, yields_thrice, NULL, &a));
    weft_future_release(weft_spawn_ex(loop, uses_most, NULL, &b));
    int rc = weft_loop_run(loop);
    weft_loop_free(loop);
    _exit(rc == 0 ? 0 : 3);
}

START_TEST(debug_mode_keeps_the_canary_of_an_unguarded_stack)
{
    char out[2048];
    RUN(canary_debug_child, out);
    ck_assert_msg(strstr(out, "unguarded") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "stack overflow") == NULL, "%s", out);
    ck_assert_msg(strstr(out, "'calm'") == NULL, "%s", out);
    /* The high-water mark still works, the canary not counted as used. */
    ck_assert_msg(strstr(out, "weft: fiber 'deep' used ") != NULL, "%s", out);
    ck_assert_msg(strstr(out, " of its 24576 stack bytes (") != NULL, "%s",
                  out);
}
END_TEST

/* A frame as big as the whole stack: it overwrites the canary (the guard's
 * bytes below stay writable on a canary stack) and the next switch says so. */
static void *smash(void *arg)
{
    (void)arg;
    volatile char big[CANARY_STACK];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    weft_yield();
    return (void *)(uintptr_t)big[64];
}

CHILD(canary_overflow_child)
{
    (void)unused;
    weft__stack_force_guard(WEFT__GUARD_CANARY);
    weft_loop *loop = debug_loop();
    weft_spawn_opts o = {.name = "smash", .stack_size = CANARY_STACK};
    weft_future_release(weft_spawn_ex(loop, smash, NULL, &o));
    weft_loop_run(loop);
    _exit(4); /* not reached */
}

START_TEST(debug_mode_still_catches_an_overflow_onto_the_canary)
{
    expect_abort_with(canary_overflow_child, "weft: stack overflow in fiber "
                                             "'smash' (stack 24576 bytes)");
}
END_TEST

/* ---- FP control state ---- */

#include <fenv.h>

static void *rounds_up(void *arg)
{
    (void)arg;
    fesetround(FE_UPWARD); /* and suspends without restoring it */
    weft_yield();
    fesetround(FE_TONEAREST);
    return NULL;
}

CHILD(fp_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    weft_spawn_opts o = {.name = "rounder"};
    weft_future_release(weft_spawn_ex(loop, rounds_up, NULL, &o));
    weft_loop_run(loop);
    weft_loop_free(loop);
}

START_TEST(a_fiber_that_changes_fp_control_across_a_switch_is_named)
{
    char out[1024];
    RUN(fp_child, out);
    if (weft_fpenv()) { /* the switch carries it: nothing to report */
        ck_assert_msg(strstr(out, "FP control") == NULL, "%s", out);
        return;
    }
    ck_assert_msg(strstr(out, "weft: fiber 'rounder' changed the FP control "
                              "state across a switch") != NULL,
                  "%s", out);
}
END_TEST

/* ---- a clean run says nothing ---- */

static void *well_behaved(void *arg)
{
    weft_chan *ch = arg;
    for (uintptr_t i = 0; i < 100; i++) {
        weft_sleep(0);
        weft_chan_send(ch, (void *)i, -1);
    }
    weft_chan_close(ch);
    return NULL;
}

static void *reader(void *arg)
{
    void *v;
    while (weft_chan_recv(arg, &v, -1) == 0)
        ;
    return NULL;
}

static void nothing(void *arg)
{
    (void)arg;
}

CHILD(clean_child)
{
    (void)unused;
    weft_loop *loop = debug_loop();
    weft_chan *ch = weft_chan_new(4);
    weft_future *a = weft_spawn(loop, well_behaved, ch);
    weft_future *b = weft_spawn(loop, reader, ch);
    weft_call_later(loop, 5, nothing, NULL);
    int rc = weft_loop_run(loop);
    weft_await(a, NULL);
    weft_await(b, NULL);
    weft_future_release(a);
    weft_future_release(b);
    weft_chan_free(ch);
    weft_loop_free(loop);
    _exit(rc == 0 ? 0 : 3);
}

START_TEST(a_clean_run_reports_nothing)
{
    char out[1024];
    RUN(clean_child, out);
    ck_assert_msg(strstr(out, "weft:") == NULL, "unexpected: %s", out);
}
END_TEST

static Suite *debug_suite(void)
{
    Suite *s = suite_create("debug");
    TCase *tc = tcase_create("debug");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_slow_callback_is_reported_with_its_time);
    tcase_add_test(tc, a_slow_fiber_is_reported_with_its_name_and_time);
    tcase_add_test(tc, a_mutex_locked_from_the_wrong_thread_fails_and_says_so);
    tcase_add_test(tc,
                   an_fd_watched_by_a_loop_is_not_closed_from_another_thread);
    tcase_add_test(tc, a_failed_task_nobody_awaited_is_reported);
    tcase_add_test(tc,
                   a_deadlock_lists_each_blocked_fiber_and_what_it_waits_on);
    tcase_add_test(tc, high_stack_use_is_reported_with_the_high_water_mark);
    tcase_add_test(tc, deep_recursion_in_a_named_fiber_is_named_and_aborts);
    tcase_add_test(tc, debug_mode_keeps_the_canary_of_an_unguarded_stack);
    tcase_add_test(tc, debug_mode_still_catches_an_overflow_onto_the_canary);
    tcase_add_test(tc,
                   a_fiber_that_changes_fp_control_across_a_switch_is_named);
    tcase_add_test(tc, a_clean_run_reports_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(debug_suite());
}
