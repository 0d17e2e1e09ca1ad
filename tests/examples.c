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
#include <sys/stat.h>
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

static rlim_t child_nofile; /* 0, or the child's descriptor limit */

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
        if (child_nofile != 0) {
            struct rlimit rl = {child_nofile, child_nofile};
            setrlimit(RLIMIT_NOFILE, &rl);
        }
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

/* Signals the server (SIGINT or SIGTERM) and expects its graceful exit
 * (0) within 10 s. */
static void stop_gracefully(struct proc *p, int sig)
{
    ck_assert_int_eq(kill(p->pid, sig), 0);
    ck_assert_int_eq(wait_exit(p->pid, 10000), 0);
    close(p->out);
    close(p->in);
}

/* Raises the soft descriptor limit to want, or as far as the hard one
 * lets it (root raises the hard one too): the limit now. Children (the
 * servers) inherit it. */
static rlim_t raise_fd_limit(rlim_t want)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        if (rl.rlim_max < want) {
            struct rlimit up = {want, want};
            if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                return want;
        }
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur;
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
    /* 10,000 connections at once (the server holds as many): as many as
     * the hard descriptor limit allows, a thousand under sanitizers. */
    int nclients = (int)scaled(10000, 1000);
    rlim_t lim = raise_fd_limit((rlim_t)nclients + 256);
    if ((rlim_t)nclients + 256 > lim)
        nclients = (int)lim - 256;
    char *argv[] = {"echo", "--port", "0", "--loops", "2", NULL};
    struct proc p = start("echo", argv);
    int port = echo_port(&p);

    /* All the clients at once, each with its own bytes. */
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

/* The server out of descriptors (a limit of 64): it keeps serving the
 * connections it has, the others wait in the backlog, and each is served
 * as descriptors free. Nothing is lost. */
START_TEST(echo_out_of_descriptors_serves_everyone_in_turn)
{
    enum { N = 150 };
    raise_fd_limit(N + 256);
    child_nofile = 64;
    char *argv[] = {"echo", "--port", "0", "--loops", "1", NULL};
    struct proc p = start("echo", argv);
    child_nofile = 0;
    int port = echo_port(&p);
    int fds[N];
    char msg[N][32];
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to(port); /* completes in the backlog */
        int n = snprintf(msg[i], sizeof msg[i], "client %d\n", i);
        send_all(fds[i], msg[i], (size_t)n);
    }
    /* In turn: each answer comes, then that client leaves, freeing a
     * descriptor for one still queued. */
    bool done[N] = {false};
    int left = N;
    int64_t end = now_ms() + 20000;
    while (left > 0 && now_ms() < end) {
        struct pollfd pf[N];
        for (int i = 0; i < N; i++)
            pf[i] =
                (struct pollfd){.fd = done[i] ? -1 : fds[i], .events = POLLIN};
        ck_assert_int_gt(poll(pf, N, 5000), 0);
        for (int i = 0; i < N; i++)
            if (!done[i] && (pf[i].revents & POLLIN)) {
                recv_exactly(fds[i], msg[i], strlen(msg[i]));
                close(fds[i]);
                done[i] = true;
                left--;
            }
    }
    ck_assert_int_eq(left, 0);
    stop_gracefully(&p, SIGTERM);
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

/* ---- examples/http ---- */

/* Runs a shell command; its standard output (and error, with 2>&1 in
 * cmd) into out. Its exit status. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A document root in a fresh temporary directory, with a secret beside
 * it (outside the root) and a symlink from inside to it. */
struct site {
    char dir[64], root[96], big[128];
    size_t big_len;
    unsigned char *big_data;
};

static void make_site(struct site *w)
{
    snprintf(w->dir, sizeof w->dir, "/tmp/weft-http-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(w->dir));
    snprintf(w->root, sizeof w->root, "%s/root", w->dir);
    ck_assert_int_eq(mkdir(w->root, 0755), 0);
    char p[192];
    snprintf(p, sizeof p, "%s/secret.txt", w->dir);
    write_file(p, "the secret\n", 11);
    snprintf(p, sizeof p, "%s/index.html", w->root);
    write_file(p, "<h1>hi</h1>\n", 12);
    snprintf(p, sizeof p, "%s/style.css", w->root);
    write_file(p, "h1{}\n", 5);
    snprintf(p, sizeof p, "%s/sub", w->root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    char target[192];
    snprintf(target, sizeof target, "%s/secret.txt", w->dir);
    snprintf(p, sizeof p, "%s/escape.txt", w->root);
    ck_assert_int_eq(symlink(target, p), 0);
    w->big_len = 3 * 1024 * 1024 + 17;
    w->big_data = malloc(w->big_len);
    for (size_t i = 0; i < w->big_len; i++)
        w->big_data[i] = (unsigned char)(i * 2654435761u >> 13);
    snprintf(w->big, sizeof w->big, "%s/sub/big.bin", w->root);
    write_file(w->big, w->big_data, w->big_len);
}

static void remove_site(struct site *w)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->dir);
    ck_assert_int_eq(system(cmd), 0);
    free(w->big_data);
}

static struct proc start_http(struct site *w, int *port)
{
    setenv("HTTP_TIMEOUTS_MS", "400,1500", 1);
    char *argv[] = {"http", "--port", "0",     "--loops",
                    "2",    "--root", w->root, NULL};
    struct proc p = start("http", argv);
    char out[4096] = "";
    ck_assert_msg(read_until(&p, "\n", out, sizeof out, 5000),
                  "no ready line from examples/http: '%s'", out);
    const char *at = strstr(out, " port ");
    ck_assert_msg(at != NULL, "ready line: '%s'", out);
    *port = atoi(at + 6);
    return p;
}

#define CURL "curl --noproxy '*' -s -m 10 "

START_TEST(http_answers_curl_with_each_status_and_keeps_files_in_the_root)
{
    struct site w;
    make_site(&w);
    int port;
    struct proc p = start_http(&w, &port);
    char cmd[1024], out[8192];
    const char *base = "http://127.0.0.1";
#define GET(fmt, ...)                                                          \
    (snprintf(cmd, sizeof cmd, fmt, __VA_ARGS__), run(cmd, out, sizeof out))
    ck_assert_int_eq(GET(CURL
                         "-w ' %%{http_code} %%{content_type}' %s:%d/hello",
                         base, port),
                     0);
    ck_assert_str_eq(out, "Hello, world! 200 text/plain");
    /* HEAD: the headers of GET, no body. */
    ck_assert_int_eq(GET(CURL "-I %s:%d/hello", base, port), 0);
    ck_assert(strstr(out, "HTTP/1.1 200 OK\r\n") == out);
    ck_assert(strstr(out, "Content-Length: 13\r\n") != NULL);
    ck_assert(strstr(out, "Hello") == NULL);
    ck_assert_int_eq(GET(CURL
                         "-w '%%{http_code} %%{content_type}' -o /dev/null "
                         "%s:%d/index.html",
                         base, port),
                     0);
    ck_assert_str_eq(out, "200 text/html; charset=utf-8");
    ck_assert_int_eq(GET(CURL
                         "-w '%%{content_type}' -o /dev/null %s:%d/style.css",
                         base, port),
                     0);
    ck_assert_str_eq(out, "text/css");
    /* A large file, byte for byte. */
    char dl[160];
    snprintf(dl, sizeof dl, "%s/download", w.dir);
    ck_assert_int_eq(GET(CURL "-o '%s' %s:%d/sub/big.bin", dl, base, port), 0);
    FILE *f = fopen(dl, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *got = malloc(w.big_len + 1);
    ck_assert_uint_eq(fread(got, 1, w.big_len + 1, f), w.big_len);
    fclose(f);
    ck_assert(memcmp(got, w.big_data, w.big_len) == 0);
    free(got);
    /* No way out of the root: dots, encoded dots, a symlink. */
    const char *escapes[] = {"/../secret.txt", "/%2e%2e/secret.txt",
                             "/sub/%2E%2E/%2e%2e/secret.txt",
                             "/sub/..%2f..%2fsecret.txt", "/escape.txt"};
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        ck_assert_int_eq(GET(CURL "--path-as-is -w ' %%{http_code}' '%s:%d%s'",
                             base, port, escapes[i]),
                         0);
        ck_assert_msg(strstr(out, "secret") == NULL &&
                          strstr(out, " 404") != NULL,
                      "%s: '%s'", escapes[i], out);
    }
    ck_assert_int_eq(
        GET(CURL "-w '%%{http_code}' -o /dev/null %s:%d/nothing", base, port),
        0);
    ck_assert_str_eq(out, "404");
    ck_assert_int_eq(GET(CURL "-w '%%{http_code}' -o /dev/null -X DELETE "
                              "%s:%d/hello",
                         base, port),
                     0);
    ck_assert_str_eq(out, "405");
    ck_assert_int_eq(GET(CURL "-w '%%{http_code}' -o /dev/null -d x=1 "
                              "%s:%d/hello",
                         base, port),
                     0);
    ck_assert_str_eq(out, "405");
    /* Keep-alive: curl reuses its connection for the second URL. */
    ck_assert_int_eq(GET(CURL "-v %s:%d/hello %s:%d/index.html 2>&1", base,
                         port, base, port),
                     0);
    ck_assert_msg(strstr(out, "Re-using existing connection") != NULL, "%s",
                  out);
#undef GET
    stop_gracefully(&p, SIGTERM);
    remove_site(&w);
}
END_TEST

/* Sends req on a fresh connection and reads until the server closes it
 * or 5 s pass: what came back. */
static void exchange(int port, const char *req, size_t len, char *out,
                     size_t cap)
{
    int fd = connect_to(port);
    send_all(fd, req, len);
    size_t have = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 5000) != 1)
            break;
        ssize_t n = recv(fd, out + have, cap - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    out[have] = '\0';
    close(fd);
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

START_TEST(http_takes_pipelined_requests_and_refuses_what_it_must)
{
    struct site w;
    make_site(&w);
    int port;
    struct proc p = start_http(&w, &port);
    static char out[65536];
    /* Three requests in one packet (one with a body, taken and dropped),
     * the last closing: three answers, in order, then the close. */
    const char *pipe3 = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /index.html HTTP/1.1\r\nHost: x\r\n"
                        "Content-Length: 5\r\n\r\nabcde"
                        "HEAD /hello HTTP/1.1\r\nHost: x\r\n"
                        "Connection: close\r\n\r\n";
    exchange(port, pipe3, strlen(pipe3), out, sizeof out);
    ck_assert_int_eq(count(out, "HTTP/1.1 200 OK\r\n"), 3);
    ck_assert(strstr(out, "Hello, world!") < strstr(out, "<h1>hi</h1>"));
    ck_assert_int_eq(count(out, "Hello, world!"), 1); /* HEAD: no body */
    struct {
        const char *req;
        const char *status;
    } bad[] = {
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400 "},
        {"GET /hello HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "}, /* no Host */
        {"GET /hello HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
         "HTTP/1.1 400 "},
        {"POST /hello HTTP/1.1\r\nHost: x\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         "HTTP/1.1 411 "},
        {"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
         "HTTP/1.1 413 "},
        {"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",
         "HTTP/1.1 400 "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        exchange(port, bad[i].req, strlen(bad[i].req), out, sizeof out);
        ck_assert_msg(strstr(out, bad[i].status) == out, "%s -> '%s'",
                      bad[i].req, out);
    }
    /* Headers over the cap: 431. */
    static char huge[12000];
    int n = snprintf(huge, sizeof huge,
                     "GET /hello HTTP/1.1\r\nHost: x\r\n"
                     "X-Big: ");
    memset(huge + n, 'a', 9000);
    memcpy(huge + n + 9000, "\r\n\r\n", 4);
    exchange(port, huge, (size_t)n + 9004, out, sizeof out);
    ck_assert_msg(strstr(out, "HTTP/1.1 431 ") == out, "'%s'", out);
    /* Too slow with its headers (400 ms here): 408. */
    int64_t t = now_ms();
    exchange(port, "GET /hello HTTP/1.1\r\nHo", 23, out, sizeof out);
    ck_assert_msg(strstr(out, "HTTP/1.1 408 ") == out, "'%s'", out);
    ck_assert_int_lt(now_ms() - t, 4000);
    /* Idle between requests (1.5 s here): closed, without a word. */
    t = now_ms();
    const char *one = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(port, one, strlen(one), out, sizeof out);
    ck_assert_int_eq(count(out, "HTTP/1.1 200 OK"), 1);
    ck_assert_int_eq(count(out, "HTTP/1.1 "), 1);
    ck_assert_int_ge(now_ms() - t, 1000);
    stop_gracefully(&p, SIGINT);
    remove_site(&w);
}
END_TEST

START_TEST(http_under_wrk_and_a_sigterm_mid_download)
{
    struct site w;
    make_site(&w);
    raise_fd_limit(2048);
    int port;
    struct proc p = start_http(&w, &port);
    static char out[16384];
    char cmd[512];
    /* wrk, 256 connections for 3 s: every response a 200, no socket
     * error. */
    snprintf(cmd, sizeof cmd,
             "wrk -t1 -c256 -d3s http://127.0.0.1:%d/hello 2>&1", port);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "requests in") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "Non-2xx") == NULL, "%s", out);
    ck_assert_msg(strstr(out, "Socket errors") == NULL, "%s", out);
    /* A download in flight (rate-limited to take about 2.5 s) when
     * SIGTERM comes: it completes whole, then the server exits 0. */
    char dl[160];
    snprintf(dl, sizeof dl, "%s/download", w.dir);
    snprintf(cmd, sizeof cmd,
             CURL "--limit-rate 1300K -o '%s' -w '%%{http_code}' "
                  "http://127.0.0.1:%d/sub/big.bin",
             dl, port);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    struct timespec ts = {0, 500 * 1000000};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(kill(p.pid, SIGTERM), 0);
    char code[16] = "";
    ck_assert_ptr_nonnull(fgets(code, sizeof code, f));
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_str_eq(code, "200");
    struct stat st;
    ck_assert_int_eq(stat(dl, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)w.big_len);
    ck_assert_int_eq(wait_exit(p.pid, 10000), 0);
    close(p.out);
    close(p.in);
    remove_site(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("examples");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_serves_every_byte_and_stops_gracefully_under_load);
    tcase_add_test(tc, echo_explains_its_command_line);
    tcase_add_test(tc, echo_out_of_descriptors_serves_everyone_in_turn);
    tcase_add_test(tc, embed_answers_from_fibers_inside_a_host_poll_loop);
    tcase_add_test(
        tc, http_answers_curl_with_each_status_and_keeps_files_in_the_root);
    tcase_add_test(tc, http_takes_pipelined_requests_and_refuses_what_it_must);
    tcase_add_test(tc, http_under_wrk_and_a_sigterm_mid_download);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
