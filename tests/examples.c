/* SPDX-License-Identifier: MIT */
/* The example programs, driven from outside as their users would: the
 * binaries from WEFT_EXAMPLES (a build's examples directory) are started
 * as processes, talked to over loopback sockets and pipes, and signalled.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct proc {
    pid_t pid;
    int out; /* its stdout and stderr, read end */
    int in;  /* its stdin, write end */
};

/* Starts examples/<name> with argv, stdin and stdout/stderr piped. */
static struct proc start(const char *name, char *const argv[])
{
    const char *dir = getenv("WEFT_EXAMPLES");
    ck_assert_msg(dir != NULL, "WEFT_EXAMPLES is not set");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int out[2], in[2];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execv(path, argv);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    return (struct proc){pid, out[0], in[1]};
}

/* Reads the process's output until it contains needle or ms pass; the
 * output so far in buf (NUL-terminated). True if found. */
static bool read_until(struct proc *p, const char *needle, char *buf,
                       size_t cap, int ms)
{
    size_t have = strlen(buf);
    int64_t end = now_ms() + ms;
    while (strstr(buf, needle) == NULL) {
        int left = (int)(end - now_ms());
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            return false;
        ssize_t n = read(p->out, buf + have, cap - 1 - have);
        if (n <= 0)
            return false;
        have += (size_t)n;
        buf[have] = '\0';
    }
    return true;
}

/* Waits up to ms for the process to exit: its status, or -1 (then it is
 * killed). */
static int wait_exit(pid_t pid, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void raise_fd_limit(rlim_t want)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        ck_assert_int_gt(w, 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Receives exactly n bytes (5 s at most), checking them against want. */
static void recv_exactly(int fd, const char *want, size_t n)
{
    char buf[65536];
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&pf, 1, 5000), 1);
        size_t k = n - got < sizeof buf ? n - got : sizeof buf;
        ssize_t r = recv(fd, buf, k, 0);
        ck_assert_int_gt(r, 0);
        ck_assert(memcmp(buf, want + got, (size_t)r) == 0);
        got += (size_t)r;
    }
}

/* The connection ends (end of file or reset) within 5 s. */
static void expect_closed(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&pf, 1, 5000), 1);
    char c;
    ck_assert_int_le(recv(fd, &c, 1, 0), 0);
}

static int echo_port(struct proc *p)
{
    char out[4096] = "";
    ck_assert_msg(read_until(p, "\n", out, sizeof out, 5000),
                  "no ready line from examples/echo: '%s'", out);
    const char *at = strstr(out, " port ");
    ck_assert_msg(at != NULL, "ready line: '%s'", out);
    return atoi(at + 6);
}

START_TEST(echo_serves_every_byte_and_stops_gracefully_under_load)
{
    int nclients = (int)scaled(1000, 200);
    raise_fd_limit((rlim_t)nclients + 256);
    char *argv[] = {"echo", "--port", "0", "--loops", "2", NULL};
    struct proc p = start("echo", argv);
    int port = echo_port(&p);

    /* Many clients at once, each with its own bytes. */
    int *fds = calloc((size_t)nclients, sizeof *fds);
    char msg[64][1024];
    for (int k = 0; k < 64; k++)
        for (int j = 0; j < 1024; j++)
            msg[k][j] = (char)('a' + (k * 7 + j) % 26);
    for (int i = 0; i < nclients; i++) {
        fds[i] = connect_to(port);
        send_all(fds[i], msg[i % 64], 100 + (size_t)(i % 900));
    }
    for (int i = 0; i < nclients; i++)
        recv_exactly(fds[i], msg[i % 64], 100 + (size_t)(i % 900));

    /* A client that resets mid-request costs the others nothing. */
    int rst = connect_to(port);
    send_all(rst, msg[0], 500);
    struct linger lg = {1, 0};
    setsockopt(rst, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(rst);

    /* Requests in flight when SIGTERM comes: all their bytes come back,
     * then the connections close; the idle ones close; exit 0. */
    enum { BUSY = 16, BIG = 64 * 1024 };
    static char big[BIG];
    for (int j = 0; j < BIG; j++)
        big[j] = (char)('A' + j % 23);
    int busy[BUSY];
    for (int i = 0; i < BUSY; i++) {
        busy[i] = connect_to(port);
        send_all(busy[i], big, BIG);
    }
    ck_assert_int_eq(kill(p.pid, SIGTERM), 0);
    for (int i = 0; i < BUSY; i++) {
        recv_exactly(busy[i], big, BIG);
        expect_closed(busy[i]);
        close(busy[i]);
    }
    for (int i = 0; i < nclients; i += 97)
        expect_closed(fds[i]);
    ck_assert_int_eq(wait_exit(p.pid, 10000), 0);
    /* New connections are refused: nobody listens any more. */
    int late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_ne(connect(late, (struct sockaddr *)&a, sizeof a), 0);
    close(late);
    for (int i = 0; i < nclients; i++)
        close(fds[i]);
    free(fds);
    close(p.out);
    close(p.in);
}
END_TEST

START_TEST(echo_explains_its_command_line)
{
    char out[4096] = "";
    char *help[] = {"echo", "--help", NULL};
    struct proc p = start("echo", help);
    ck_assert(read_until(&p, "--loops", out, sizeof out, 5000));
    ck_assert_int_eq(wait_exit(p.pid, 5000), 0);
    close(p.out);
    close(p.in);
    char *bad[][4] = {{"echo", "--bogus", NULL, NULL},
                      {"echo", NULL, NULL, NULL},
                      {"echo", "--port", "70000", NULL},
                      {"echo", "--port", "1", "--loops"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[5] = {bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL};
        p = start("echo", argv);
        out[0] = '\0';
        ck_assert(read_until(&p, "echo: ", out, sizeof out, 5000));
        ck_assert_int_eq(wait_exit(p.pid, 5000), 2);
        close(p.out);
        close(p.in);
    }
}
END_TEST

START_TEST(embed_answers_from_fibers_inside_a_host_poll_loop)
{
    char *argv[] = {"embed", NULL};
    struct proc p = start("embed", argv);
    char out[8192] = "";
    ck_assert(read_until(&p, "type lines", out, sizeof out, 5000));
    const char *in = "first line\nsecond\n";
    ck_assert_int_eq(write(p.in, in, strlen(in)), (ssize_t)strlen(in));
    ck_assert_msg(read_until(&p, "you said 'second'", out, sizeof out, 5000),
                  "output: '%s'", out);
    ck_assert(strstr(out, "you said 'first line'") != NULL);
    close(p.in); /* end of input ends it */
    ck_assert(read_until(&p, "embed: done", out, sizeof out, 5000));
    ck_assert_int_eq(wait_exit(p.pid, 5000), 0);
    close(p.out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("examples");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_serves_every_byte_and_stops_gracefully_under_load);
    tcase_add_test(tc, echo_explains_its_command_line);
    tcase_add_test(tc, embed_answers_from_fibers_inside_a_host_poll_loop);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
