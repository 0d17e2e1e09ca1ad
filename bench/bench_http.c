/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 on loopback, driven by wrk: examples/http (--loops 1) against
 * nginx (one worker, access log off, the same 13-byte body), a
 * hand-written edge-triggered epoll server (the floor: it finds the end
 * of each request's head and answers, no real parsing) and a
 * thread-per-connection server. Each server is pinned to CPU 0, wrk
 * (one thread, 256 connections, 3 s) to CPU 1; rounds interleave the
 * servers; reported: requests per second (wrk), server CPU per request
 * (from the kernel's accounting of the server process over the run) and
 * paired ratios (medians over the rounds).
 *
 * Then --loops 2 against --loops 1, nothing pinned (on 2 cores wrk
 * shares the CPUs): throughput ratio, and what each loop served.
 *
 * Needs wrk (and nginx for its column): `make bench` installs them as
 * root; without wrk the benchmark says so and prints "-".
 * WEFT_BENCH_QUICK=1 (make bench QUICK=1): one round of 1 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_ROUNDS 3
#define CONNS "256"
static int rounds = MAX_ROUNDS; /* 1 with WEFT_BENCH_QUICK=1 */
static const char *secs = "3s"; /* "1s" with WEFT_BENCH_QUICK=1 */

enum { WEFT, NGINX, FLOOR, THREADS, NSERVERS };
static const char *const server_name[NSERVERS] = {"weft", "nginx", "floor",
                                                  "threads"};

static const char response[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "\r\n"
                               "Hello, world!";

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---- the floor: edge-triggered epoll, a buffer per connection ---- */

struct fconn {
    char buf[8192];
    size_t len;
};

/* Answers every whole request head in c; false to close. */
static bool floor_answer(int fd, struct fconn *c)
{
    char out[sizeof response * 32];
    size_t olen = 0;
    char *p = c->buf, *end = c->buf + c->len, *h;
    while ((h = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) != NULL) {
        if (olen + sizeof response - 1 > sizeof out) {
            if (write(fd, out, olen) != (ssize_t)olen)
                return false;
            olen = 0;
        }
        memcpy(out + olen, response, sizeof response - 1);
        olen += sizeof response - 1;
        p = h + 4;
    }
    if (olen > 0 && write(fd, out, olen) != (ssize_t)olen)
        return false; /* a short write: a benchmark client never causes it */
    c->len = (size_t)(end - p);
    memmove(c->buf, p, c->len);
    return c->len < sizeof c->buf;
}

static void run_floor(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct fconn **conns = calloc(65536, sizeof *conns);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = lfd};
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[c] = calloc(1, sizeof **conns);
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLET,
                                             .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            struct fconn *c = conns[fd];
            bool open = true;
            for (;;) {
                ssize_t r = read(fd, c->buf + c->len, sizeof c->buf - c->len);
                if (r > 0) {
                    c->len += (size_t)r;
                    if (!(open = floor_answer(fd, c)))
                        break;
                    continue;
                }
                open = r < 0 && errno == EAGAIN;
                break;
            }
            if (!open) {
                close(fd);
                free(c);
                conns[fd] = NULL;
            }
        }
    }
}

/* ---- a thread per connection ---- */

static void *thread_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct fconn *c = calloc(1, sizeof *c);
    for (;;) {
        ssize_t r = read(fd, c->buf + c->len, sizeof c->buf - c->len);
        if (r <= 0)
            break;
        c->len += (size_t)r;
        if (!floor_answer(fd, c))
            break;
    }
    free(c);
    close(fd);
    return NULL;
}

static void run_threads(int lfd)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &a, thread_conn, (void *)(intptr_t)c) != 0)
            close(c);
    }
}

/* ---- starting and stopping servers ---- */

static char tmpdir[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) ||
        getsockname(fd, (struct sockaddr *)&sa, &len))
        die("free port");
    close(fd);
    return ntohs(sa.sin_port);
}

static int plain_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, SOMAXCONN))
        die("listen");
    return fd;
}

static char http_path[PATH_MAX]; /* examples/http of this build */
static const char *nginx_path = "/usr/sbin/nginx";

/* Waits until something accepts on port (5 s at most). */
static bool wait_listening(int port)
{
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        close(fd);
        if (rc == 0)
            return true;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Starts server kind on port: pinned to cpu (-1: not pinned); loops for
 * weft. Its stderr goes to errfile (weft's per-loop counts). */
static pid_t server_start(int kind, int port, int cpu, int loops,
                          const char *errfile)
{
    char ports[16], loopss[16];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(loopss, sizeof loopss, "%d", loops);
    char conf[128];
    if (kind == NGINX) {
        snprintf(conf, sizeof conf, "%s/nginx.conf", tmpdir);
        FILE *f = fopen(conf, "w");
        if (f == NULL)
            die("nginx.conf");
        fprintf(f,
                "daemon off; master_process off; worker_processes 1;\n"
                "pid %s/nginx.pid; error_log %s/nginx.err;\n"
                "events { worker_connections 4096; }\n"
                "http { access_log off;\n"
                "  client_body_temp_path %s; proxy_temp_path %s;\n"
                "  fastcgi_temp_path %s; uwsgi_temp_path %s;\n"
                "  scgi_temp_path %s;\n"
                "  server { listen 127.0.0.1:%d;\n"
                "    location /hello { default_type text/plain;\n"
                "      return 200 \"Hello, world!\"; } } }\n",
                tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, port);
        fclose(f);
    }
    pid_t pid = bench_fork_server();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        if (cpu >= 0)
            bench_pin(cpu);
        int null = open("/dev/null", O_RDWR);
        int err =
            errfile ? open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
        dup2(null, 0);
        dup2(null, 1);
        dup2(err >= 0 ? err : null, 2);
        if (kind == WEFT) {
            execl(http_path, "http", "--port", ports, "--loops", loopss,
                  (char *)NULL);
            _exit(127);
        }
        if (kind == NGINX) {
            execl(nginx_path, "nginx", "-c", conf, "-p", tmpdir, (char *)NULL);
            _exit(127);
        }
        int lfd = plain_listen(port);
        if (kind == FLOOR)
            run_floor(lfd);
        else
            run_threads(lfd);
        _exit(0);
    }
    bench_server_pid = pid;
    if (!wait_listening(port)) {
        fprintf(stderr, "bench_http: the %s server did not start\n",
                server_name[kind]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

/* ---- wrk ---- */

struct result {
    double rps;    /* requests per second */
    double cpu_ns; /* server CPU per request */
    long errors;   /* socket errors and non-2xx responses */
};

/* Runs wrk against port (pinned to cpu, -1: not), reading the server's
 * CPU around it. */
static bool wrk_run(pid_t server, int port, int cpu, struct result *r)
{
    char pin[32] = "", cmd[256];
    if (cpu >= 0)
        snprintf(pin, sizeof pin, "taskset -c %d", cpu);
    snprintf(cmd, sizeof cmd,
             "%s wrk -t1 -c" CONNS " -d%s http://127.0.0.1:%d/hello 2>&1", pin,
             secs, port);
    double c0 = bench_process_cpu_ns(server);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return false;
    char line[512];
    double rps = 0;
    long requests = 0, errors = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        long a, b, c, d;
        sscanf(line, " Requests/sec: %lf", &rps);
        sscanf(line, " %ld requests in", &requests);
        if (sscanf(line,
                   " Socket errors: connect %ld, read %ld, write %ld, "
                   "timeout %ld",
                   &a, &b, &c, &d) == 4)
            errors += a + b + c + d;
        if (sscanf(line, " Non-2xx or 3xx responses: %ld", &a) == 1)
            errors += a;
    }
    pclose(f);
    double c1 = bench_process_cpu_ns(server);
    if (rps <= 0 || requests <= 0)
        return false;
    r->rps = rps;
    r->cpu_ns = (c1 - c0) / (double)requests;
    r->errors = errors;
    return true;
}

static double median_ratio(double (*a)[NSERVERS], int i, int j)
{
    double v[MAX_ROUNDS];
    for (int k = 0; k < rounds; k++)
        v[k] = a[k][i] / a[k][j];
    return bench_median(v, rounds);
}

int main(void)
{
    signal(SIGINT, bench_on_signal);
    signal(SIGTERM, bench_on_signal);
    signal(SIGPIPE, SIG_IGN);
    const char *q = getenv("WEFT_BENCH_QUICK");
    if (q != NULL && strcmp(q, "1") == 0) {
        rounds = 1;
        secs = "1s";
    }
    if (system("command -v wrk >/dev/null 2>&1") != 0) {
        printf("# wrk is not installed (make bench installs it as root): "
               "no HTTP numbers\n");
        printf("target %-46s %10s\n", "http weft/nginx CPU per request", "-");
        return 0;
    }
    /* examples/http of this build: ../examples/http from here. */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        die("/proc/self/exe");
    self[n] = '\0';
    snprintf(http_path, sizeof http_path, "%s/../examples/http", dirname(self));
    if (access(http_path, X_OK) != 0) {
        fprintf(stderr, "bench_http: %s is missing (make bench builds it)\n",
                http_path);
        return 1;
    }
    bool have_nginx = access(nginx_path, X_OK) == 0;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/weft-bench-http-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        die("mkdtemp");

    printf("# wrk -t1 -c" CONNS " -d%s on CPU 1, each server on CPU 0; "
           "%d interleaved rounds, medians; nginx: one worker, no log%s\n",
           secs, rounds, have_nginx ? "" : " (not installed: skipped)");
    double rps[MAX_ROUNDS][NSERVERS] = {{0}}, cpu[MAX_ROUNDS][NSERVERS] = {{0}};
    long errors = 0;
    bool ok[NSERVERS] = {true, have_nginx, true, true};
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < NSERVERS; k++) {
            int kind = (k + r) % NSERVERS; /* interleaved, rotating */
            if (!ok[kind])
                continue;
            int port = free_port();
            pid_t pid = server_start(kind, port, 0, 1, NULL);
            struct result res;
            if (pid < 0 || !wrk_run(pid, port, 1, &res)) {
                ok[kind] = false;
                if (pid > 0)
                    bench_server_stop(pid, SIGKILL);
                continue;
            }
            bench_server_stop(pid, SIGKILL);
            rps[r][kind] = res.rps;
            cpu[r][kind] = res.cpu_ns;
            if (kind == WEFT)
                errors += res.errors;
        }
    for (int k = 0; k < NSERVERS; k++) {
        if (!ok[k]) {
            printf("http_%-35s %12s\n", server_name[k], "-");
            continue;
        }
        double v[MAX_ROUNDS], c[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            v[r] = rps[r][k] / 1000;
            c[r] = cpu[r][k];
        }
        char name[64];
        snprintf(name, sizeof name, "http_%s_requests", server_name[k]);
        bench_line(name, bench_median(v, rounds), "k/s");
        snprintf(name, sizeof name, "http_%s_server_cpu", server_name[k]);
        bench_line(name, bench_median(c, rounds), "ns/request");
    }
    bench_line("http_weft_errors_and_non_2xx", (double)errors, "");

    /* --loops 2 against --loops 1, nothing pinned. */
    double l1[MAX_ROUNDS], l2[MAX_ROUNDS];
    unsigned long served[2] = {0, 0};
    bool loops_ok = true;
    for (int r = 0; r < rounds && loops_ok; r++)
        for (int loops = 1; loops <= 2; loops++) {
            char errfile[128];
            snprintf(errfile, sizeof errfile, "%s/http.err", tmpdir);
            int port = free_port();
            pid_t pid = server_start(WEFT, port, -1, loops, errfile);
            struct result res;
            if (pid < 0 || !wrk_run(pid, port, -1, &res)) {
                loops_ok = false;
                if (pid > 0)
                    bench_server_stop(pid, SIGKILL);
                break;
            }
            bench_server_stop(
                pid, SIGTERM); /* graceful: it says what each loop did */
            (loops == 1 ? l1 : l2)[r] = res.rps;
            if (loops == 2) {
                FILE *f = fopen(errfile, "r");
                char line[256];
                while (f != NULL && fgets(line, sizeof line, f) != NULL) {
                    int i;
                    unsigned long s;
                    if (sscanf(line, "http: loop %d of 2 served %lu", &i, &s) ==
                            2 &&
                        i >= 1 && i <= 2)
                        served[i - 1] += s;
                }
                if (f != NULL)
                    fclose(f);
            }
        }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_http: could not remove %s\n", tmpdir);

    printf("\n# targets (issue 13), measured in this run\n");
    bool pass = true;
    if (ok[NGINX])
        pass &= bench_target("http weft/nginx CPU per request",
                             median_ratio(cpu, WEFT, NGINX), "<=", 0.95);
    else
        printf("target %-46s %10s\n", "http weft/nginx CPU per request", "-");
    pass &= bench_target("http weft/floor requests per second",
                         median_ratio(rps, WEFT, FLOOR), ">=", 0.95);
    pass &= bench_target("http weft/threads requests per second",
                         median_ratio(rps, WEFT, THREADS), ">=", 1.3);
    if (ok[NGINX])
        bench_line("http_weft/nginx_requests", median_ratio(rps, WEFT, NGINX),
                   "x");
    if (ok[NGINX])
        bench_line("http_floor/nginx_server_cpu",
                   median_ratio(cpu, FLOOR, NGINX), "x");
    if (loops_ok) {
        double v[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++)
            v[r] = l2[r] / l1[r];
        bench_line("http_loops1_requests", bench_median(l1, rounds) / 1000,
                   "k/s");
        bench_line("http_loops2_requests", bench_median(l2, rounds) / 1000,
                   "k/s");
        bench_line("http_loops2_loop1_served", (double)served[0], "requests");
        bench_line("http_loops2_loop2_served", (double)served[1], "requests");
        pass &= bench_target("http --loops 2 / --loops 1 requests per second",
                             bench_median(v, rounds), ">=", 0.8);
        pass &= bench_target(
            "http --loops 2: the less busy loop's share (%)",
            100.0 * (double)(served[0] < served[1] ? served[0] : served[1]) /
                (double)(served[0] + served[1] + 1),
            ">=", 10);
    }
    return pass ? 0 : 2;
}
