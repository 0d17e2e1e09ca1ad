/* SPDX-License-Identifier: MIT */
/* Helpers shared by the libcheck suites. */
#ifndef WEFT_TESTUTIL_H
#define WEFT_TESTUTIL_H

#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_TEST_SANITIZED 1
#else
#define WEFT_TEST_SANITIZED 0
#endif

/* Load tests shrink under sanitizers and emulation (WEFT_TEST_SLOW=1 is
 * set by the Makefile for qemu): same code paths, fewer rounds. */
static inline long scaled(long n, long slow_n)
{
    const char *slow = getenv("WEFT_TEST_SLOW");
    if (WEFT_TEST_SANITIZED || (slow && *slow == '1'))
        return slow_n;
    return n;
}

/* Runs fn(arg) in a forked child, stderr captured into out (NUL-ended).
 * Returns the child's wait status. */
static inline int run_child(void (*fn)(void *), void *arg, char *out,
                            size_t outlen)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], out + len, outlen - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == outlen - 1)
            break;
    }
    out[len] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* Runs a suite; returns the process exit status. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
