/* SPDX-License-Identifier: MIT */
/*
 * TCP echo over loopback: the weft server of the README against the floor
 * (a hand-written edge-triggered epoll server, one thread) and against a
 * thread per connection (blocking read/write, 64 KiB thread stacks).
 *
 * Each server runs in a process of its own, forked for each round and
 * pinned to CPU 0; the load generator is this process, pinned to CPU 1:
 * one epoll loop driving C connections (100 and 1,000), each sending a
 * 64-byte message and waiting for its echo before sending the next (one
 * message outstanding per connection). A round connects, warms up until
 * every connection has had an echo, then counts round trips for a fixed
 * time, and reads the server's CPU time (all its threads, in ns, through
 * clock_getcpuclockid; /proc/PID/stat ticks if that fails; not
 * /proc/PID/schedstat, which covers the main thread only) before and
 * after. server_busy is that CPU time over the wall time: near 100% the
 * server sets the pace, well below it the generator does. Rounds
 * interleave weft, floor, threads, weft...; medians and the medians of
 * the paired ratios (weft against the round beside it) are reported, and
 * the 99th percentile of the round trips' latency (as the generator sees
 * it, its own queueing included). The
 * generator's connections close with an RST (SO_LINGER 0) before the
 * server is killed and reaped: no TIME_WAIT, no process left.
 *
 * Five rounds of 0.8 s per server and size, about 45 s in all;
 * WEFT_BENCH_QUICK=1: one round of 0.3 s per server and size.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"

#define MSG 64
#define MAX_ROUNDS 5
#define FD_SLACK 64

enum { WEFT, FLOOR, THREADS, NSERVERS };
static const char *const server_name[NSERVERS] = {"weft", "floor", "threads"};

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---- (a) weft: the README's server, as written there ---- */

static void *echo(void *arg) /* one fiber per connection */
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = weft_read(fd, buf, sizeof buf, 30000)) > 0)
        if (weft_write(fd, buf, (size_t)n, 30000) < 0)
            break;
    weft_close(fd);
    return NULL;
}

static void *serve(void *arg) /* runs as the main fiber */
{
    int lfd = *(int *)arg, fd;
    while ((fd = weft_accept(lfd, NULL, NULL, -1)) >= 0)
        weft_go(NULL, echo, (void *)(intptr_t)fd);
    return WEFT_ERR_PTR(fd);
}

static void run_weft(int lfd)
{
    weft_run(serve, &lfd, NULL);
}

/* ---- (b) the floor: edge-triggered epoll, one thread ---- */

/* Bytes a write could not take (the send buffer full): the connection
 * waits for EPOLLOUT and reads nothing more until they are out. */
struct pending {
    size_t off, len;
    char buf[4096];
};

static struct pending **pend;

static bool floor_flush(int ep, int fd)
{
    struct pending *p = pend[fd];
    while (p->off < p->len) {
        ssize_t w = write(fd, p->buf + p->off, p->len - p->off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return false;
        p->off += (size_t)w;
    }
    free(p);
    pend[fd] = NULL;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    return true;
}

static void floor_close(int fd)
{
    free(pend[fd]);
    pend[fd] = NULL;
    close(fd);
}

/* Reads until EAGAIN, writing each read back. */
static void floor_conn(int ep, int fd, char *buf, size_t size)
{
    if (pend[fd] && !floor_flush(ep, fd)) {
        if (errno != EAGAIN)
            floor_close(fd);
        return;
    }
    for (;;) {
        ssize_t n = read(fd, buf, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            floor_close(fd);
            return;
        }
        size_t off = 0;
        while (off < (size_t)n) {
            ssize_t w = write(fd, buf + off, (size_t)n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN) {
                struct pending *p = malloc(sizeof *p);
                if (p == NULL)
                    die("malloc");
                p->off = 0;
                p->len = (size_t)n - off;
                memcpy(p->buf, buf + off, p->len);
                pend[fd] = p;
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                         .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                return;
            }
            if (w < 0) {
                floor_close(fd);
                return;
            }
            off += (size_t)w;
        }
    }
}

static void run_floor(int lfd)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    pend = calloc((size_t)rl.rlim_cur, sizeof *pend);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (pend == NULL || ep < 0)
        die("floor server");
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    struct epoll_event evs[256];
    static char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != lfd) {
                floor_conn(ep, fd, buf, sizeof buf);
                continue;
            }
            int c;
            while ((c = accept4(lfd, NULL, NULL,
                                SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                struct epoll_event cev = {.events = EPOLLIN | EPOLLET,
                                          .data.fd = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0)
                    close(c);
            }
        }
    }
}

/* ---- (c) a thread per connection, blocking calls ---- */

static void *thread_echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0, w; off < n; off += w)
            if ((w = write(fd, buf + off, (size_t)(n - off))) < 0)
                goto out;
    }
out:
    close(fd);
    return NULL;
}

static void run_threads(int lfd)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                usleep(1000);
            continue;
        }
        /* Out of threads for now (other processes hold them): retry for
         * up to a second, then drop the connection (the generator says
         * so). */
        pthread_t t;
        int rc = 0;
        static bool told;
        for (int i = 0; i < 1000; i++) {
            rc = pthread_create(&t, &a, thread_echo, (void *)(intptr_t)fd);
            if (rc != EAGAIN)
                break;
            if (!told) {
                told = true;
                fprintf(stderr, "# threads server: pthread_create failed "
                                "with EAGAIN; retrying (slow accepts)\n");
            }
            usleep(1000);
        }
        if (rc != 0) {
            fprintf(stderr, "bench_echo: threads server: pthread_create: %s\n",
                    strerror(rc));
            close(fd);
        }
    }
}

/* ---- server processes ---- */

static int plain_listen(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, SOMAXCONN))
        die("listen");
    return fd;
}

/* Forks the server, pinned to CPU 0, listening on an ephemeral port of
 * 127.0.0.1; returns its pid and port. */
static pid_t server_start(int kind, int *port)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        die("pipe2");
    pid_t pid = bench_fork_server();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(p[0]);
        bench_pin(0);
        int lfd = kind == WEFT ? weft_tcp_listen("127.0.0.1", "0", 0)
                               : plain_listen();
        if (lfd < 0)
            _exit(1);
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        getsockname(lfd, (struct sockaddr *)&sa, &len);
        int prt = ntohs(sa.sin_port);
        if (write(p[1], &prt, sizeof prt) != sizeof prt)
            _exit(1);
        close(p[1]);
        if (kind == WEFT)
            run_weft(lfd);
        else if (kind == FLOOR)
            run_floor(lfd);
        else
            run_threads(lfd);
        _exit(0);
    }
    bench_server_pid = pid;
    close(p[1]);
    ssize_t r;
    while ((r = read(p[0], port, sizeof *port)) < 0 && errno == EINTR)
        ;
    close(p[0]);
    if (r != sizeof *port) {
        fprintf(stderr, "bench_echo: the %s server did not start\n",
                server_name[kind]);
        exit(1);
    }
    return pid;
}

/* ---- the load generator ---- */

struct conn {
    int fd, got;
    bool echoed;
    uint64_t sent_ns; /* when its message went out */
};

/* Round-trip latencies of the measured part of a round, in ns. */
static struct {
    uint32_t *ns;
    long n, cap;
} lat;

static const char msg[MSG] = "weft echo benchmark: 64 bytes of payload....";

/* Why the last round failed. */
static char why[160];

static void failed(const char *what, int err)
{
    snprintf(why, sizeof why, "%s: %s", what, err ? strerror(err) : "");
}

static bool gen_send(struct conn *c, uint64_t now)
{
    c->sent_ns = now;
    return send(c->fd, msg, MSG, MSG_NOSIGNAL) == MSG;
}

/* Drives the connections until the clock passes until_ns (and, if
 * all_echoed, until every connection has had an echo, at most 30 s
 * longer: a server of a thread per connection, pinned to one CPU, can
 * take seconds to accept and start 1,000 of them). Returns the round trips
 * completed, -1 if a connection failed. Unless all_echoed (the warm-up),
 * each round trip's latency goes to lat: from the send to the last byte
 * of its echo, as the generator sees it (its own queueing included). */
static long gen_run(int ep, struct conn *cs, int nc, uint64_t until_ns,
                    bool all_echoed)
{
    struct epoll_event evs[1024];
    char buf[MSG];
    long rts = 0;
    int echoed = 0;
    uint64_t give_up = until_ns + 30000000000u;
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= until_ns && (!all_echoed || echoed == nc))
            return rts;
        if (now >= give_up) {
            snprintf(why, sizeof why,
                     "%d of %d connections had no echo in 30 s", nc - echoed,
                     nc);
            return -1;
        }
        int n = epoll_wait(ep, evs, 1024, 10);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = &cs[evs[i].data.u32];
            ssize_t r = recv(c->fd, buf, (size_t)(MSG - c->got), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                failed(r ? "recv" : "recv: the server closed a connection",
                       r ? errno : 0);
                return -1;
            }
            if ((c->got += (int)r) < MSG)
                continue;
            c->got = 0;
            rts++;
            uint64_t at = bench_now_ns();
            if (!all_echoed && lat.n < lat.cap)
                lat.ns[lat.n++] =
                    (uint32_t)(at - c->sent_ns < UINT32_MAX ? at - c->sent_ns
                                                            : UINT32_MAX);
            if (!c->echoed) {
                c->echoed = true;
                echoed++;
            }
            if (!gen_send(c, at)) {
                failed("send", errno);
                return -1;
            }
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

struct sample {
    double rps, cpu_ns, busy; /* round trips/s, server ns per rt, cpu/wall */
    double p99_us;            /* 99th percentile round-trip latency */
    /* % of CPU 0 that went to other processes than the server, and of
     * CPU 1 to other processes than the generator */
    double others[2];
};

/* A CPU's busy time so far, in ns, from /proc/stat (ticks), or -1. */
static double cpu_busy_ns(int cpu)
{
    char tag[16];
    int len = snprintf(tag, sizeof tag, "cpu%d ", cpu);
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    double ns = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long long v[8];
        if (strncmp(line, tag, (size_t)len) != 0)
            continue;
        if (sscanf(line + len, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
            ns = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1e9 /
                 (double)sysconf(_SC_CLK_TCK);
        break;
    }
    if (f != NULL)
        fclose(f);
    return ns;
}

static double self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The share of a CPU that others took: its busy time less ours, in % of
 * the wall time (0 when /proc/stat cannot be read). */
static double others_pct(double busy, double ours, double wall)
{
    double p = busy < 0 ? 0 : 100 * (busy - ours) / wall;
    return p < 0 ? 0 : p;
}

/* One round: a fresh server, nc connections, a warm-up until each has had
 * an echo, then secs of counting. False if the server failed. */
static bool echo_round(int kind, int nc, double secs, struct sample *out)
{
    int port;
    pid_t pid = server_start(kind, &port);
    struct conn *cs = calloc((size_t)nc, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    bool ok = cs != NULL && ep >= 0;
    int opened = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (; ok && opened < nc; opened++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        struct linger lg = {1, 0};
        if (fd < 0) {
            failed("socket", errno);
            ok = false;
            break;
        }
        cs[opened].fd = fd;
        int rc;
        while ((rc = connect(fd, (struct sockaddr *)&sa, sizeof sa)) < 0 &&
               errno == EINTR)
            ;
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u32 = (uint32_t)opened};
        if (rc < 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) ||
            fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            failed("connect", errno);
            ok = false;
        }
    }
    for (int i = 0; ok && i < nc; i++)
        if (!(ok = gen_send(&cs[i], bench_now_ns())))
            failed("send", errno);
    /* Warm-up: at least 200 ms (100 in quick mode), every connection
     * echoed at least once. */
    if (ok)
        ok = gen_run(ep, cs, nc, bench_now_ns() + (uint64_t)(secs * 2e8),
                     true) >= 0;
    if (ok) {
        double b0 = cpu_busy_ns(0), c0 = bench_process_cpu_ns(pid);
        double g0 = cpu_busy_ns(1), m0 = self_cpu_ns();
        uint64_t t0 = bench_now_ns();
        lat.n = 0;
        long rts = gen_run(ep, cs, nc, t0 + (uint64_t)(secs * 1e9), false);
        uint64_t t1 = bench_now_ns();
        double c1 = bench_process_cpu_ns(pid), b1 = cpu_busy_ns(0);
        double m1 = self_cpu_ns(), g1 = cpu_busy_ns(1);
        ok = rts > 0;
        if (rts == 0)
            failed("no round trip in the measured time", 0);
        if (ok) {
            double wall = (double)(t1 - t0);
            out->rps = (double)rts * 1e9 / wall;
            out->cpu_ns = (c1 - c0) / (double)rts;
            out->busy = 100 * (c1 - c0) / wall;
            out->others[0] = others_pct(b1 - b0, c1 - c0, wall);
            out->others[1] = others_pct(g1 - g0, m1 - m0, wall);
            qsort(lat.ns, (size_t)lat.n, sizeof *lat.ns, cmp_u32);
            out->p99_us = lat.n ? lat.ns[lat.n * 99 / 100] / 1e3 : -1;
        }
    }
    for (int i = 0; i < opened; i++)
        close(cs[i].fd); /* SO_LINGER 0: an RST, no TIME_WAIT */
    if (ep >= 0)
        close(ep);
    free(cs);
    bench_server_stop(pid, SIGKILL);
    return ok;
}

/* ---- main ---- */

/* The median of a copy: the rounds keep their order for the pairing. */
static double median_of(const double *v, int n)
{
    double c[MAX_ROUNDS];
    memcpy(c, v, (size_t)n * sizeof *c);
    return bench_median(c, n);
}

static double ratio_median(const double *a, const double *b, int n)
{
    double r[MAX_ROUNDS];
    for (int i = 0; i < n; i++)
        r[i] = a[i] / b[i];
    return bench_median(r, n);
}

int main(void)
{
    bool quick = bench_quick();
    int rounds = quick ? 1 : MAX_ROUNDS;
    double secs = quick ? 0.3 : 0.8;
    static const int sizes[] = {100, 1000};
    enum { NSIZES = sizeof sizes / sizeof sizes[0] };

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, bench_on_signal);
    signal(SIGTERM, bench_on_signal);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    bench_pin(1);
    lat.cap = 1L << 24;
    if ((lat.ns = malloc((size_t)lat.cap * sizeof *lat.ns)) == NULL)
        die("malloc");

    printf("# TCP echo, loopback, server pinned to CPU 0, generator to CPU 1; "
           "%d-byte messages, one outstanding per connection; medians of %d "
           "interleaved round%s of %.1f s (a fresh server each)\n",
           MSG, rounds, rounds > 1 ? "s" : "", secs);
    static struct sample s[NSIZES][NSERVERS][MAX_ROUNDS];
    bool done[NSIZES] = {false};
    for (int z = 0; z < NSIZES; z++) {
        int nc = sizes[z];
        if (rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur < (rlim_t)(nc + FD_SLACK)) {
            printf("# %d connections skipped: RLIMIT_NOFILE is %llu, they "
                   "need %d\n",
                   nc, (unsigned long long)rl.rlim_cur, nc + FD_SLACK);
            continue;
        }
        done[z] = true;
        /* A failed round is tried once more before the size is skipped
         * (other processes may hold the threads or memory it needs). */
        for (int r = 0; r < rounds && done[z]; r++)
            for (int k = 0; k < NSERVERS && done[z]; k++) {
                if (echo_round(k, nc, secs, &s[z][k][r]))
                    continue;
                printf("# a %s round with %d connections failed (%s): once "
                       "more\n",
                       server_name[k], nc, why);
                if (echo_round(k, nc, secs, &s[z][k][r]))
                    continue;
                printf("# %d connections skipped: the %s server failed "
                       "twice (%s)\n",
                       nc, server_name[k], why);
                done[z] = false;
            }
    }

    double ratio[NSIZES][3];
    for (int z = 0; z < NSIZES; z++) {
        if (!done[z])
            continue;
        int nc = sizes[z];
        /* The table's figures: threads are the pthreads column (a thread
         * per connection), the epoll server the floor. */
        char cond[64];
        snprintf(cond, sizeof cond, "loopback: %d connections", nc);
        struct bench_fig fr = {.name = "echo round trips",
                               .cond = cond,
                               .unit = "k/s",
                               .higher_is_better = true},
                         fl = {.name = "echo p99 latency",
                               .cond = cond,
                               .unit = "us"},
                         fc = {.name = "echo server CPU per round trip",
                               .cond = cond,
                               .unit = "ns"};
        static const enum bench_who who[NSERVERS] = {BENCH_WEFT, BENCH_FLOOR,
                                                     BENCH_PT};
        for (int k = 0; k < NSERVERS; k++)
            for (int r = 0; r < rounds; r++) {
                bench_add(&fr, who[k], s[z][k][r].rps / 1e3);
                bench_add(&fl, who[k], s[z][k][r].p99_us);
                bench_add(&fc, who[k], s[z][k][r].cpu_ns);
            }
        bench_emit(&fr);
        bench_emit(&fl);
        bench_emit(&fc);
        double rps[NSERVERS][MAX_ROUNDS], cpu[NSERVERS][MAX_ROUNDS];
        char name[64];
        for (int k = 0; k < NSERVERS; k++) {
            double busy[MAX_ROUNDS];
            for (int r = 0; r < rounds; r++) {
                rps[k][r] = s[z][k][r].rps;
                cpu[k][r] = s[z][k][r].cpu_ns;
                busy[r] = s[z][k][r].busy;
            }
            snprintf(name, sizeof name, "echo_%d_%s_roundtrips", nc,
                     server_name[k]);
            bench_line(name, median_of(rps[k], rounds) / 1e3, "k/s");
            snprintf(name, sizeof name, "echo_%d_%s_server_cpu", nc,
                     server_name[k]);
            bench_line(name, median_of(cpu[k], rounds), "ns/roundtrip");
            snprintf(name, sizeof name, "echo_%d_%s_server_busy", nc,
                     server_name[k]);
            bench_line(name, median_of(busy, rounds), "% of CPU 0");
        }
        /* Interference: the median share of each CPU other processes
         * took, and in how many rounds either passed 10%. */
        int skewed = 0;
        double v[2][NSERVERS * MAX_ROUNDS];
        for (int k = 0; k < NSERVERS; k++)
            for (int r = 0; r < rounds; r++) {
                const double *o = s[z][k][r].others;
                v[0][k * rounds + r] = o[0];
                v[1][k * rounds + r] = o[1];
                skewed += o[0] > 10 || o[1] > 10;
            }
        snprintf(name, sizeof name, "echo_%d_cpu0_to_other_processes", nc);
        bench_line(name, bench_median(v[0], NSERVERS * rounds), "% of CPU 0");
        snprintf(name, sizeof name, "echo_%d_cpu1_to_other_processes", nc);
        bench_line(name, bench_median(v[1], NSERVERS * rounds), "% of CPU 1");
        if (skewed)
            printf("# other processes took over 10%% of CPU 0 or 1 in %d of "
                   "%d rounds: round trips/s are skewed (a server of 1,000 "
                   "threads gets more of a shared CPU than one of one "
                   "thread); CPU per round trip holds best\n",
                   skewed, NSERVERS * rounds);
        /* Paired: each weft round against the rounds beside it. */
        ratio[z][0] = ratio_median(rps[WEFT], rps[FLOOR], rounds);
        ratio[z][1] = ratio_median(cpu[WEFT], cpu[FLOOR], rounds);
        ratio[z][2] = ratio_median(rps[WEFT], rps[THREADS], rounds);
        snprintf(name, sizeof name, "echo_%d_weft/floor_roundtrips", nc);
        bench_line(name, ratio[z][0], "x");
        snprintf(name, sizeof name, "echo_%d_weft/floor_cpu", nc);
        bench_line(name, ratio[z][1], "x");
        snprintf(name, sizeof name, "echo_%d_weft/threads_roundtrips", nc);
        bench_line(name, ratio[z][2], "x");
        snprintf(name, sizeof name, "echo_%d_weft/threads_cpu", nc);
        bench_line(name, ratio_median(cpu[WEFT], cpu[THREADS], rounds), "x");
    }

    printf("\n# targets (issue 11), measured in this run (loopback, server "
           "pinned to CPU 0, generator to CPU 1)\n");
    if (!done[NSIZES - 1]) {
        printf("# echo with 1,000 connections not measured: no targets\n");
        return 0;
    }
    bench_target("echo 1000 conns, weft/floor round trips/s",
                 ratio[NSIZES - 1][0], ">=", 0.9);
    bench_target("echo 1000 conns, weft/floor CPU per round trip",
                 ratio[NSIZES - 1][1], "<=", 1.1);
    bench_target("echo 1000 conns, weft/threads round trips/s",
                 ratio[NSIZES - 1][2], ">=", 1.5);
    return 0;
}
