/* SPDX-License-Identifier: MIT */
/*
 * examples/http: an HTTP/1.1 server on weft, one fiber per connection.
 *
 *     examples/http --port P [--host H] [--loops N] [--root DIR]
 *
 * GET and HEAD of /hello ("Hello, world!", text/plain) and of the files
 * under --root (no escape from it: "..", encoded dots and symlinks that
 * lead out are refused). Keep-alive and pipelining; request bodies with
 * Content-Length (consumed, up to 1 MiB: 413 beyond; 411 for a chunked
 * one); 400 for a malformed request, 404, 405 for other methods, 408 for
 * a client too slow to send its headers (10 s), 431 for headers over
 * 8 KiB; an idle keep-alive connection is closed after 15 s. Loops,
 * SO_REUSEPORT and the graceful stop on SIGINT/SIGTERM as in
 * examples/echo (common.h).
 *
 * For tests, HTTP_TIMEOUTS_MS="header,idle" shortens the two timeouts.
 *
 * Try it: examples/http --port 8080 --root . and
 * curl -v http://127.0.0.1:8080/hello
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "common.h"

#define HEAD_MAX 8192             /* request line and headers */
#define BODY_MAX (1 << 20)        /* request bodies taken (and dropped) */
static int64_t header_ms = 10000; /* from a request's first byte */
static int64_t idle_ms = 15000;   /* between requests on a connection */
static char root_real[PATH_MAX];  /* --root, resolved; "" without */

/* A connection's state, on the heap: a fiber's stack is 64 KiB by
 * default (weft_spawn_ex takes a bigger one), and buffers of this size
 * belong in memory of their own. */
struct conn_in {
    struct server *srv;
    int fd;
    char buf[HEAD_MAX + 4096]; /* what has been read and not yet used */
    size_t len;
    char target[HEAD_MAX]; /* the request's, as sent */
    char path[HEAD_MAX];   /* decoded */
    char full[PATH_MAX], real[PATH_MAX];
    char chunk[32768]; /* a file's body on its way out */
};

/* Reads more into in->buf, waiting until deadline (monotonic ms; the
 * stop's drain shortens it). > 0 bytes, 0 at end of file, or -errno. */
static ssize_t fill(struct conn_in *in, int64_t timeout_ms)
{
    for (;;) {
        struct server *s = in->srv;
        ssize_t n = weft_read(
            in->fd, in->buf + in->len, sizeof in->buf - in->len,
            s->stopping && timeout_ms > DRAIN_MS ? DRAIN_MS : timeout_ms);
        if (draining(s, n))
            continue;
        if (n > 0)
            in->len += (size_t)n;
        return n;
    }
}

static void consume(struct conn_in *in, size_t n)
{
    memmove(in->buf, in->buf + n, in->len - n);
    in->len -= n;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

/* Sends a response: the status line and headers, then body (omitted for
 * HEAD, whose Content-Length is the body's all the same). */
static int respond(struct conn_in *in, int status, const char *type,
                   const char *body, size_t len, bool head, bool close)
{
    char h[4096];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 %d %s\r\nServer: weft-example\r\n"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, reason(status), type, len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "",
                     close ? "Connection: close\r\n" : "");
    if (!head && body != NULL && len <= sizeof h - (size_t)n) {
        memcpy(h + n, body, len); /* a small body: one send for all */
        return send_all(in->srv, in->fd, h, (size_t)n + len);
    }
    int rc = send_all(in->srv, in->fd, h, (size_t)n);
    if (rc == 0 && !head && body != NULL && len > 0)
        rc = send_all(in->srv, in->fd, body, len);
    return rc;
}

static int error(struct conn_in *in, int status, bool head)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    return respond(in, status, "text/plain", body, (size_t)n, head, true);
}

static const char *content_type(const char *path)
{
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".css", "text/css"},
        {".js", "text/javascript"},
        {".json", "application/json"},
        {".xml", "application/xml"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".pdf", "application/pdf"},
        {".wasm", "application/wasm"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    if (dot != NULL && strchr(dot, '/') == NULL)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i][0]) == 0)
                return types[i][1];
    return "application/octet-stream";
}

/* Decodes %XX in the path part of target into out (cap bytes). False for
 * a bad escape, a NUL, a query-less path that does not start with '/',
 * or a ".." segment (encoded or not). */
static bool decode_path(const char *target, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (len == 0 || target[0] != '/')
        return false;
    for (size_t i = 0; i < len && target[i] != '?' && target[i] != '#'; i++) {
        char c = target[i];
        if (c == '%') {
            if (i + 2 >= len || !isxdigit((unsigned char)target[i + 1]) ||
                !isxdigit((unsigned char)target[i + 2]))
                return false;
            char hex[3] = {target[i + 1], target[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    for (const char *p = out; (p = strstr(p, "..")) != NULL; p += 2)
        if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
            return false;
    return true;
}

/* Serves a file under the root: 200, or the error status to send. Only a
 * regular file whose real path is inside the root's (symlinks resolved)
 * is served. */
static int serve_file(struct conn_in *in, const char *path, bool head,
                      bool last)
{
    char *full = in->full, *real = in->real;
    if (root_real[0] == '\0' ||
        snprintf(full, PATH_MAX, "%s%s", root_real, path) >= PATH_MAX ||
        realpath(full, real) == NULL)
        return 404;
    size_t rl = strlen(root_real);
    if (strncmp(real, root_real, rl) != 0 || (real[rl] != '/'))
        return 404; /* out of the root, or the root itself */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 404;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 404;
    }
    int rc = respond(in, 200, content_type(real), NULL, (size_t)st.st_size,
                     true, last);
    /* The body in chunks: a regular file's read does not wait for the
     * network (it may wait for the disk, which a server with slow disks
     * would hand to weft_run_in_executor). */
    off_t off = 0;
    while (rc == 0 && !head && off < st.st_size) {
        ssize_t n = pread(fd, in->chunk, sizeof in->chunk, off);
        if (n <= 0) {
            rc = -EIO; /* the file shrank: the response is cut, close */
            break;
        }
        rc = send_all(in->srv, in->fd, in->chunk, (size_t)n);
        off += n;
    }
    close(fd);
    return rc < 0 ? -1 : 200;
}

static bool has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i + tl <= len; i++)
        if (strncasecmp(v + i, token, tl) == 0)
            return true;
    return false;
}

/* One request, whose head is in->buf[0, head_len). False when the
 * connection must close. */
static bool handle_request(struct conn_in *in, size_t head_len)
{
    const char *p = in->buf, *end = in->buf + head_len - 2; /* last CRLF */
    const char *eol = memmem(p, head_len, "\r\n", 2);
    /* METHOD SP target SP HTTP/1.x */
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 =
        sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == p || sp2 == sp1 + 1 ||
        eol - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        error(in, 400, false);
        return false;
    }
    for (const char *c = p; c < sp1; c++)
        if (!isupper((unsigned char)*c)) {
            error(in, 400, false);
            return false;
        }
    bool http10 = sp2[8] == '0';
    bool get = sp1 - p == 3 && memcmp(p, "GET", 3) == 0;
    bool head = sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0;
    /* One pass over the headers: each line must be "name: value"; the
     * four this server acts on are kept. */
    struct value {
        const char *v;
        size_t len;
    } connection = {0}, host = {0}, te = {0}, length = {0};
    for (const char *h = eol + 2; h < end;) {
        const char *e = memmem(h, (size_t)(end - h), "\r\n", 2);
        if (e == NULL)
            e = end;
        const char *colon = memchr(h, ':', (size_t)(e - h));
        if (colon == NULL || colon == h ||
            memchr(h, ' ', (size_t)(colon - h))) {
            error(in, 400, head);
            return false;
        }
        const char *v = colon + 1, *ve = e;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        struct value got = {v, (size_t)(ve - v)};
        size_t nl = (size_t)(colon - h);
#define IS(name) (nl == sizeof name - 1 && strncasecmp(h, name, nl) == 0)
        if (IS("Connection"))
            connection = got;
        else if (IS("Host"))
            host = got;
        else if (IS("Transfer-Encoding"))
            te = got;
        else if (IS("Content-Length"))
            length = got;
#undef IS
        h = e + 2;
    }
    bool close = http10
                     ? !(connection.v &&
                         has_token(connection.v, connection.len, "keep-alive"))
                     : (connection.v &&
                        has_token(connection.v, connection.len, "close"));
    if (!http10 && host.v == NULL) {
        error(in, 400, head);
        return false;
    }
    if (te.v != NULL) {
        error(in, 411, head); /* chunked bodies are not taken */
        return false;
    }
    /* The body, if any: taken and dropped, so the next request starts
     * where it ends. */
    long long body = 0;
    if (length.v != NULL) {
        char num[24];
        char *e;
        if (length.len == 0 || length.len >= sizeof num) {
            error(in, 400, head);
            return false;
        }
        memcpy(num, length.v, length.len);
        num[length.len] = '\0';
        body = strtoll(num, &e, 10);
        if (*e != '\0' || body < 0) {
            error(in, 400, head);
            return false;
        }
        if (body > BODY_MAX) {
            error(in, 413, head);
            return false;
        }
    }
    char *target = in->target;
    size_t tlen = (size_t)(sp2 - sp1 - 1);
    memcpy(target, sp1 + 1, tlen);
    target[tlen] = '\0';
    consume(in, head_len);
    while (body > 0) {
        if (in->len == 0 && fill(in, header_ms) <= 0)
            return false;
        size_t take = (size_t)body < in->len ? (size_t)body : in->len;
        consume(in, take);
        body -= (long long)take;
    }

    char *path = in->path;
    int rc;
    if (!get && !head)
        rc = 405;
    else if (!decode_path(target, tlen, path, HEAD_MAX))
        rc = 404; /* a ".." or a bad escape: nothing there for anyone */
    else if (strcmp(path, "/hello") == 0) {
        /* The hot path of a benchmark: a response made once, sent whole
         * (respond() would format the same bytes each time). */
        static const char hello[] = "HTTP/1.1 200 OK\r\n"
                                    "Server: weft-example\r\n"
                                    "Content-Type: text/plain\r\n"
                                    "Content-Length: 13\r\n\r\n"
                                    "Hello, world!";
        if (!head && !close)
            rc = send_all(in->srv, in->fd, hello, sizeof hello - 1) == 0 ? 200
                                                                         : -1;
        else
            rc = respond(in, 200, "text/plain", "Hello, world!", 13, head,
                         close) == 0
                     ? 200
                     : -1;
    } else
        rc = serve_file(in, path, head, close);
    if (rc > 200) {
        /* Answered with the connection kept: the request was whole. */
        char b[64];
        int n = snprintf(b, sizeof b, "%d %s\n", rc, reason(rc));
        if (respond(in, rc, "text/plain", b, (size_t)n, head, close) < 0)
            rc = -1;
    }
    return rc > 0 && !close && !in->srv->stopping;
}

static void serve_connection(struct conn_in *in)
{
    for (;;) {
        /* The head of the next request: waited for idle_ms while nothing
         * of it has come, header_ms once it has started. */
        int64_t started = -1;
        char *eoh;
        while ((eoh = memmem(in->buf, in->len, "\r\n\r\n", 4)) == NULL) {
            if (in->len >= HEAD_MAX) {
                error(in, 431, false);
                return;
            }
            int64_t wait = idle_ms;
            if (in->len > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                int64_t now = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                if (started < 0)
                    started = now;
                wait = header_ms - (now - started);
                if (wait <= 0) {
                    error(in, 408, false);
                    return;
                }
            }
            ssize_t n = fill(in, wait);
            if (n == -ETIMEDOUT && in->len > 0) {
                error(in, 408, false);
                return;
            }
            if (n <= 0)
                return; /* closed, idle, reset, or stopping */
        }
        size_t head_len = (size_t)(eoh + 4 - in->buf);
        if (head_len > HEAD_MAX) {
            error(in, 431, false);
            return;
        }
        in->srv->served++;
        if (!handle_request(in, head_len))
            return;
    }
}

/* One connection: requests, one after the other (pipelined ones are
 * already in the buffer). */
static void http(struct server *s, int fd)
{
    struct conn_in *c = malloc(sizeof *c);
    if (c == NULL)
        return;
    c->srv = s;
    c->fd = fd;
    c->len = 0;
    serve_connection(c);
    free(c);
}

int main(int argc, char **argv)
{
    const char *t = getenv("HTTP_TIMEOUTS_MS");
    if (t != NULL) {
        long long h, i;
        if (sscanf(t, "%lld,%lld", &h, &i) == 2 && h > 0 && i > 0) {
            header_ms = h;
            idle_ms = i;
        }
    }
    /* --root is resolved once, before the loops start. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--root") == 0 &&
            realpath(argv[i + 1], root_real) == NULL) {
            fprintf(stderr, "http: --root %s: %s\n", argv[i + 1],
                    strerror(errno));
            return 2;
        }
    struct options o;
    return serve(argc, argv, "http", http, &o);
}
