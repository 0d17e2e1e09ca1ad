/* SPDX-License-Identifier: MIT */
/* The core layer: coroutines, guarded pooled stacks, overflow reports. */
#include "testutil.h"

#include <pthread.h>
#include <sys/mman.h>

#include "../core/internal.h"

/* ---- running, yielding, finishing ---- */

static void *count_three(void *arg)
{
    int *n = arg;
    for (int i = 0; i < 3; i++) {
        (*n)++;
        ck_assert_int_eq(weft_coro_yield(), 0);
    }
    return (void *)(intptr_t)(*n * 10);
}

START_TEST(coroutine_runs_yields_and_returns_its_result)
{
    int n = 0;
    void *result = NULL;
    weft_coro *co = weft_coro_new(count_three, &n, NULL);
    ck_assert_ptr_nonnull(co);
    ck_assert(!weft_coro_done(co));
    for (int i = 1; i <= 3; i++) {
        ck_assert_int_eq(weft_coro_resume(co, &result), 0);
        ck_assert_int_eq(n, i);
    }
    ck_assert_int_eq(weft_coro_resume(co, &result), 1);
    ck_assert_ptr_eq(result, (void *)30);
    ck_assert(weft_coro_done(co));
    ck_assert_int_eq(weft_coro_resume(co, &result), -EINVAL);
    weft_coro_free(co);
}
END_TEST

static void *returns_error(void *arg)
{
    (void)arg;
    return WEFT_ERR_PTR(-ENOENT);
}

START_TEST(coroutine_fails_with_err_ptr)
{
    void *result = NULL;
    weft_coro *co = weft_coro_new(returns_error, NULL, NULL);
    ck_assert_int_eq(weft_coro_resume(co, &result), 1);
    ck_assert(WEFT_IS_ERR(result));
    ck_assert_int_eq(WEFT_PTR_ERR(result), -ENOENT);
    ck_assert(!WEFT_IS_ERR((void *)4096));
    weft_coro_free(co);
}
END_TEST

static void *whoami(void *arg)
{
    *(weft_coro **)arg = weft_coro_current();
    return NULL;
}

START_TEST(current_is_the_running_coroutine)
{
    weft_coro *seen = NULL;
    ck_assert_ptr_null(weft_coro_current());
    weft_coro *co = weft_coro_new(whoami, &seen, NULL);
    weft_coro_resume(co, NULL);
    ck_assert_ptr_eq(seen, co);
    ck_assert_ptr_null(weft_coro_current());
    weft_coro_free(co);
}
END_TEST

/* Inner yields to outer, outer yields to main. */
static void *inner_body(void *arg)
{
    int *trace = arg;
    trace[trace[0]++ + 1] = 2;
    weft_coro_yield();
    trace[trace[0]++ + 1] = 4;
    return NULL;
}

static void *outer_body(void *arg)
{
    int *trace = arg;
    weft_coro *inner = weft_coro_new(inner_body, trace, NULL);
    trace[trace[0]++ + 1] = 1;
    ck_assert_int_eq(weft_coro_resume(inner, NULL), 0);
    trace[trace[0]++ + 1] = 3;
    weft_coro_yield();
    ck_assert_int_eq(weft_coro_resume(inner, NULL), 1);
    trace[trace[0]++ + 1] = 5;
    weft_coro_free(inner);
    return NULL;
}

START_TEST(nested_coroutines_yield_to_their_own_resumer)
{
    int trace[8] = {0};
    weft_coro *outer = weft_coro_new(outer_body, trace, NULL);
    ck_assert_int_eq(weft_coro_resume(outer, NULL), 0);
    ck_assert_int_eq(trace[0], 3);
    ck_assert_int_eq(weft_coro_resume(outer, NULL), 1);
    ck_assert_int_eq(trace[0], 5);
    for (int i = 1; i <= 5; i++)
        ck_assert_int_eq(trace[i], i);
    weft_coro_free(outer);
}
END_TEST

static void *resume_self(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)weft_coro_resume(weft_coro_current(), NULL);
}

START_TEST(bad_input_gets_a_clear_error)
{
    weft_spawn_opts small = {.stack_size = WEFT_STACK_MIN - 1};
    weft_spawn_opts huge = {.stack_size = (size_t)-1};
    weft_spawn_opts big = {.stack_size = (size_t)WEFT_STACK_MAX + 1};

    errno = 0;
    ck_assert_ptr_null(weft_coro_new(NULL, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(weft_coro_new(count_three, NULL, &small));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(weft_coro_new(count_three, NULL, &huge));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(weft_coro_new(count_three, NULL, &big));
    ck_assert_int_eq(errno, EINVAL);

    ck_assert_int_eq(weft_coro_yield(), -EPERM);
    ck_assert_int_eq(weft_coro_resume(NULL, NULL), -EINVAL);
    weft_coro_free(NULL);
    ck_assert_ptr_null(weft_coro_name(NULL));

    void *r = NULL;
    weft_coro *co = weft_coro_new(resume_self, NULL, NULL);
    ck_assert_int_eq(weft_coro_resume(co, &r), 1);
    ck_assert_int_eq((int)(intptr_t)r, -EINVAL);
    weft_coro_free(co);
}
END_TEST

START_TEST(names_and_stack_sizes)
{
    weft_spawn_opts o = {.name = "worker-1", .stack_size = 100000};
    weft_coro *a = weft_coro_new(count_three, NULL, &o);
    ck_assert_str_eq(weft_coro_name(a), "worker-1");
    ck_assert_uint_eq(weft_coro_stack_size(a), 102400); /* page-rounded */

    weft_coro *b = weft_coro_new(count_three, NULL, NULL);
    ck_assert_uint_eq(weft_coro_stack_size(b), WEFT_STACK_DEFAULT);
    ck_assert_int_eq(strncmp(weft_coro_name(b), "fiber#", 6), 0);
    ck_assert_str_ne(weft_coro_name(a), weft_coro_name(b));

    weft_spawn_opts lng = {.name = "a-name-much-longer-than-thirty-one-bytes"};
    weft_coro *c = weft_coro_new(count_three, NULL, &lng);
    ck_assert_str_eq(weft_coro_name(c), "a-name-much-longer-than-thirty-");

    weft_spawn_opts min = {.stack_size = WEFT_STACK_MIN};
    weft_coro *d = weft_coro_new(count_three, NULL, &min);
    ck_assert_ptr_nonnull(d);
    weft_coro_free(a);
    weft_coro_free(b);
    weft_coro_free(c);
    weft_coro_free(d);
}
END_TEST

static void *noop(void *arg)
{
    return arg;
}

START_TEST(finished_stacks_are_reused_from_the_pool)
{
    weft_coro *a = weft_coro_new(noop, NULL, NULL);
    weft_coro_resume(a, NULL);
    weft_coro_free(a);
    weft_coro *b = weft_coro_new(noop, (void *)7, NULL);
    ck_assert_ptr_eq(a, b); /* same stack, same header slot */
    void *r = NULL;
    ck_assert_int_eq(weft_coro_resume(b, &r), 1);
    ck_assert_ptr_eq(r, (void *)7);
    weft_coro_free(b);

    /* Beyond the hot bound the pool gives pages back but keeps working. */
    enum { N = WEFT__POOL_HOT * 3 };
    static weft_coro *many[N];
    for (int i = 0; i < N; i++) {
        many[i] = weft_coro_new(noop, NULL, NULL);
        ck_assert_int_eq(weft_coro_resume(many[i], NULL), 1);
    }
    for (int i = 0; i < N; i++)
        weft_coro_free(many[i]);
    for (int i = 0; i < N; i++) {
        many[i] = weft_coro_new(noop, (void *)(intptr_t)i, NULL);
        void *res = NULL;
        ck_assert_int_eq(weft_coro_resume(many[i], &res), 1);
        ck_assert_ptr_eq(res, (void *)(intptr_t)i);
    }
    for (int i = 0; i < N; i++)
        weft_coro_free(many[i]);
}
END_TEST

/* ---- guards ---- */

static void *park(void *arg)
{
    (void)arg;
    weft_coro_yield();
    return NULL;
}

START_TEST(every_stack_is_guarded_even_many)
{
    long n = scaled(100000, 2000);
    weft_spawn_opts o = {.stack_size = WEFT_STACK_MIN};
    weft_coro **all = calloc((size_t)n, sizeof *all);
    ck_assert_ptr_nonnull(all);
    for (long i = 0; i < n; i++) {
        all[i] = weft_coro_new(park, NULL, &o);
        ck_assert_ptr_nonnull(all[i]);
        ck_assert_int_eq(weft_coro_resume(all[i], NULL), 0);
        ck_assert_uint_ne(all[i]->stack.guard, WEFT__GUARD_CANARY);
    }
    for (long i = 0; i < n; i++) {
        ck_assert_int_eq(weft_coro_resume(all[i], NULL), 1);
        weft_coro_free(all[i]);
    }
    free(all);
}
END_TEST

/* The guard page really faults: write() from it fails with EFAULT. */
START_TEST(guard_page_is_not_accessible)
{
    weft_coro *co = weft_coro_new(noop, NULL, NULL);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ssize_t n = write(fds[1], co->stack.map, 1);
    if (co->stack.guard != WEFT__GUARD_CANARY) {
        ck_assert_int_eq(n, -1);
        ck_assert_int_eq(errno, EFAULT);
    }
    ck_assert_int_eq(write(fds[1], weft__stack_lo(&co->stack), 1), 1);
    close(fds[0]);
    close(fds[1]);
    weft_coro_free(co);
}
END_TEST

/* Deep recursion: each frame holds a page-sized buffer. */
static int __attribute__((noinline)) recurse(volatile char *prev, int depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[1023] = prev ? prev[0] : 0;
    if (depth > 1000000)
        return buf[0];
    return recurse(buf, depth + 1) + buf[1023];
}

static void *overflow_body(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse(NULL, 0);
}

static void overflow_child(void *arg)
{
    size_t size = 65536;
    if (arg) {
        weft__stack_force_guard(*(int *)arg);
        size = 69632; /* not pooled by earlier tests: mapped with this guard */
    }
    weft_spawn_opts o = {.name = "deep", .stack_size = size};
    weft_coro *co = weft_coro_new(overflow_body, NULL, &o);
    weft_coro_resume(co, NULL);
}

/* Runs child (which overflows fiber `name`) with mode, and checks that it
 * died with the report naming the fiber and its stack size. */
static void check_overflow_report_of(void (*child)(void *), const char *name,
                                     int *mode)
{
    char out[4096], want[128];
    snprintf(want, sizeof want,
             "weft: stack overflow in fiber '%s' (stack %d bytes)\n", name,
             mode ? 69632 : 65536);
    int status = run_child(child, mode, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "status %#x, stderr: %s", status, out);
    ck_assert_msg(strstr(out, want) != NULL, "stderr: %s", out);
}

static void check_overflow_report(int *mode)
{
    check_overflow_report_of(overflow_child, "deep", mode);
}

START_TEST(stack_overflow_is_reported_with_name_and_size)
{
    check_overflow_report(NULL);
}
END_TEST

START_TEST(stack_overflow_is_reported_with_mprotect_guards)
{
    int mode = WEFT__GUARD_MPROTECT;
    check_overflow_report(&mode);
}
END_TEST

/* A frame larger than a page, stored to from its low end first: nothing
 * touches the pages between the stack's bottom and that store, so it can
 * skip a one-page guard. This file is built with -fno-stack-clash-protection
 * (Makefile), so the compiler does not probe the frame page by page. */
#define BIG_FRAME (96 * 1024)
/* An index the compiler cannot see through: with constant ones only,
 * clang splits the array into two scalars and the frame is small. */
static volatile size_t big_frame_top = BIG_FRAME - 1;
static int __attribute__((noinline)) big_frame(int seed)
{
    volatile char buf[BIG_FRAME];
    buf[0] = (char)seed; /* ~33 KiB below a 64 KiB stack's bottom */
    buf[big_frame_top] = (char)seed;
    return buf[0] + buf[big_frame_top];
}

static void *big_frame_body(void *arg)
{
    return (void *)(intptr_t)big_frame((int)(intptr_t)arg);
}

static void big_frame_child(void *arg)
{
    size_t size = 65536;
    if (arg) {
        weft__stack_force_guard(*(int *)arg);
        size = 69632; /* not pooled by earlier tests: mapped with this guard */
    }
    weft_spawn_opts o = {.name = "bigframe", .stack_size = size};
    weft_coro *co = weft_coro_new(big_frame_body, (void *)1, &o);
    /* Writable memory right below the mapping, as another fiber's stack
     * usually is (mmap places them top-down): an unguarded store there
     * corrupts it and faults nowhere. (Without it, an unmapped gap below
     * would fault and be reported even with a one-page guard.) The store
     * lands about 33 KiB below the mapping with a one-page guard. */
    size_t len = 0;
    char *below = MAP_FAILED;
    for (size_t try = 128 * 1024; try >= 40 * 1024 && below == MAP_FAILED;
         try /= 2) {
        char *want = co->stack.map - try;
        below = mmap(want, try, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (below != MAP_FAILED && below != want) {
            munmap(below, try);
            below = MAP_FAILED;
        }
        len = try;
    }
    weft_coro_resume(co, NULL);
    size_t changed = 0;
    for (size_t i = 0; below != MAP_FAILED && i < len; i++)
        changed += below[i] != 0;
    fprintf(stderr, "not caught: %zu bytes changed below the stack\n", changed);
}

static void check_big_frame_report(int *mode)
{
    check_overflow_report_of(big_frame_child, "bigframe", mode);
}

START_TEST(a_frame_larger_than_a_page_lands_in_the_guard)
{
    check_big_frame_report(NULL);
}
END_TEST

START_TEST(a_frame_larger_than_a_page_lands_in_an_mprotect_guard)
{
    int mode = WEFT__GUARD_MPROTECT;
    check_big_frame_report(&mode);
}
END_TEST

/* Canary mode: clobber the bottom of the stack and yield; the switch
 * notices. (A real overflow past the canary would run into whatever lies
 * below; the canary is the weaker promise when no guard can be had.) */
static void *clobber_canary(void *arg)
{
    (void)arg;
    weft_coro *self = weft_coro_current();
    memset(weft__stack_lo(&self->stack), 0xaa, 16);
    weft_coro_yield();
    return NULL;
}

static void canary_child(void *arg)
{
    (void)arg;
    weft__stack_force_guard(WEFT__GUARD_CANARY);
    /* A size no earlier test pooled: the stack must be mapped now. */
    weft_spawn_opts o = {.name = "canary", .stack_size = 20480};
    weft_coro *co = weft_coro_new(clobber_canary, NULL, &o);
    weft_coro_resume(co, NULL);
}

START_TEST(canary_stack_overflow_is_caught_at_the_switch)
{
    char out[4096];
    int status = run_child(canary_child, NULL, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "status %#x", status);
    ck_assert_msg(strstr(out, "unguarded") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "weft: stack overflow in fiber 'canary' "
                              "(stack 20480 bytes)\n") != NULL,
                  "stderr: %s", out);
}
END_TEST

static void *null_deref(void *arg)
{
    volatile int *p = arg;
    return (void *)(intptr_t)*p;
}

static void other_fault_child(void *arg)
{
    (void)arg;
    weft_coro *co = weft_coro_new(null_deref, NULL, NULL);
    weft_coro_resume(co, NULL);
}

START_TEST(other_faults_go_to_the_previous_handler)
{
    char out[8192];
    int status = run_child(other_fault_child, NULL, out, sizeof out);
    ck_assert(strstr(out, "stack overflow") == NULL);
    /* Natively the default action kills with SIGSEGV; under ASan its own
     * handler reports the SEGV and exits non-zero. */
    ck_assert_msg((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
                      (WEFT_TEST_SANITIZED && WIFEXITED(status) &&
                       WEXITSTATUS(status) != 0),
                  "status %#x, stderr: %s", status, out);
}
END_TEST

/* When mprotect guards run out of mappings (vm.max_map_count), stacks
 * fall back to canaries, creation keeps succeeding, and we say so once. */
static void map_limit_child(void *arg)
{
    (void)arg;
    weft__stack_force_guard(WEFT__GUARD_MPROTECT);
    weft_spawn_opts o = {.stack_size = WEFT_STACK_MIN};
    long canaries = 0;
    for (long i = 0; i < 40000; i++) {
        weft_coro *co = weft_coro_new(park, NULL, &o);
        if (co == NULL) {
            fprintf(stderr, "new failed at %ld: %s\n", i, strerror(errno));
            _exit(3);
        }
        weft_coro_resume(co, NULL);
        canaries += co->stack.guard == WEFT__GUARD_CANARY;
    }
    _exit(canaries > 0 ? 0 : 4);
}

START_TEST(map_count_exhaustion_falls_back_to_canaries)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long limit = 0;
    if (f) {
        if (fscanf(f, "%ld", &limit) != 1)
            limit = 0;
        fclose(f);
    }
    if (limit == 0 || limit > 70000)
        return; /* cannot reach the limit in bounded time here */
#if defined(__SANITIZE_THREAD__)
    return; /* TSan allows ~8k fibers (it counts them as threads) */
#endif
    char out[4096];
    int status = run_child(map_limit_child, NULL, out, sizeof out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "status %#x, stderr: %s", status, out);
    const char *first = strstr(out, "unguarded");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_null(strstr(first + 1, "unguarded"));
}
END_TEST

/* ---- threads ---- */

static void *thread_body(void *arg)
{
    long sum = 0;
    for (int i = 0; i < 200; i++) {
        int n = 0;
        void *r;
        weft_coro *co = weft_coro_new(count_three, &n, NULL);
        while (weft_coro_resume(co, &r) == 0)
            ;
        sum += (intptr_t)r;
        weft_coro_free(co);
    }
    *(long *)arg = sum;
    return NULL;
}

START_TEST(coroutines_run_on_several_threads_at_once)
{
    pthread_t th[4];
    long sums[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_body, &sums[i]),
                         0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(sums[i], 200 * 30);
    }
}
END_TEST

static void *overflow_thread(void *arg)
{
    overflow_child(arg);
    return NULL;
}

static void overflow_in_thread_child(void *arg)
{
    pthread_t th;
    pthread_create(&th, NULL, overflow_thread, arg);
    pthread_join(th, NULL);
}

START_TEST(stack_overflow_is_reported_on_any_thread)
{
    char out[4096];
    int status = run_child(overflow_in_thread_child, NULL, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "status %#x, stderr: %s", status, out);
    ck_assert_ptr_nonnull(strstr(out, "stack overflow in fiber 'deep'"));
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("coroutines");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, coroutine_runs_yields_and_returns_its_result);
    tcase_add_test(tc, coroutine_fails_with_err_ptr);
    tcase_add_test(tc, current_is_the_running_coroutine);
    tcase_add_test(tc, nested_coroutines_yield_to_their_own_resumer);
    tcase_add_test(tc, bad_input_gets_a_clear_error);
    tcase_add_test(tc, names_and_stack_sizes);
    tcase_add_test(tc, finished_stacks_are_reused_from_the_pool);
    tcase_add_test(tc, coroutines_run_on_several_threads_at_once);
    suite_add_tcase(s, tc);

    TCase *g = tcase_create("guards");
    tcase_set_timeout(g, 120);
    tcase_add_test(g, every_stack_is_guarded_even_many);
    tcase_add_test(g, guard_page_is_not_accessible);
    tcase_add_test(g, stack_overflow_is_reported_with_name_and_size);
    tcase_add_test(g, stack_overflow_is_reported_with_mprotect_guards);
    tcase_add_test(g, a_frame_larger_than_a_page_lands_in_the_guard);
    tcase_add_test(g, a_frame_larger_than_a_page_lands_in_an_mprotect_guard);
    tcase_add_test(g, canary_stack_overflow_is_caught_at_the_switch);
    tcase_add_test(g, other_faults_go_to_the_previous_handler);
    tcase_add_test(g, stack_overflow_is_reported_on_any_thread);
    tcase_add_test(g, map_count_exhaustion_falls_back_to_canaries);
    suite_add_tcase(s, g);
    return s;
}

int main(void)
{
    return run_suite(core_suite());
}
