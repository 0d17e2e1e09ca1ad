/* SPDX-License-Identifier: MIT */
/*
 * What the example servers share: their command line, and one listening
 * socket per loop on a shared port. Header-only, to keep each example one
 * file plus this.
 */
#ifndef WEFT_EXAMPLES_COMMON_H
#define WEFT_EXAMPLES_COMMON_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

struct options {
    const char *host; /* 127.0.0.1 unless --host */
    char port[16];    /* the port; "0" picks one, then holds it */
    int loops;        /* --loops, default one per CPU */
    const char *root; /* --root (http only) */
};

static void usage(FILE *to, const char *name, bool with_root)
{
    fprintf(to,
            "usage: examples/%s --port P [--host H] [--loops N]%s\n"
            "  --port P   TCP port to listen on (0: any free one)\n"
            "  --host H   address to listen on (default 127.0.0.1)\n"
            "  --loops N  event loops, one thread each (default: one per "
            "CPU)\n"
            "%s"
            "  --help     this text\n",
            name, with_root ? " [--root DIR]" : "",
            with_root ? "  --root DIR directory of static files (default: "
                        "none)\n"
                      : "");
}

/* Parses argv into o. -1 to go on; otherwise the exit status (0 after
 * --help, 2 for a bad command line, with a message). */
static int parse_options(int argc, char **argv, const char *name,
                         struct options *o)
{
    bool with_root = strcmp(name, "http") == 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (struct options){.host = "127.0.0.1",
                          .loops = cpus > 0 ? (int)cpus : 1};
    bool have_port = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, name, with_root);
            return 0;
        }
        bool takes_value = strcmp(a, "--port") == 0 ||
                           strcmp(a, "--host") == 0 ||
                           strcmp(a, "--loops") == 0 ||
                           (with_root && strcmp(a, "--root") == 0);
        if (!takes_value) {
            fprintf(stderr, "%s: unknown option '%s' (try --help)\n", name, a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", name, a);
            return 2;
        }
        const char *v = argv[++i];
        char *end;
        if (strcmp(a, "--port") == 0) {
            long p = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || p < 0 || p > 65535) {
                fprintf(stderr, "%s: --port: not a port: '%s'\n", name, v);
                return 2;
            }
            snprintf(o->port, sizeof o->port, "%ld", p);
            have_port = true;
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--loops") == 0) {
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > 1024) {
                fprintf(stderr, "%s: --loops: not 1 to 1024: '%s'\n", name, v);
                return 2;
            }
            o->loops = (int)n;
        } else {
            o->root = v;
        }
    }
    if (!have_port) {
        fprintf(stderr, "%s: --port is required (try --help)\n", name);
        return 2;
    }
    return -1;
}

/* One listening socket per loop, all on o->port (SO_REUSEPORT): the fd of
 * the i-th goes to the int at byte offset off of the i-th element (of
 * size elem) of servers. Port 0 picks a free port for the first; o->port
 * then holds it. 0, or -1 with a message. */
static int listen_all(struct options *o, const char *name, void *servers,
                      size_t elem, size_t off)
{
    for (int i = 0; i < o->loops; i++) {
        int fd = weft_tcp_listen_ex(o->host, o->port, 0, WEFT_LISTEN_REUSEPORT);
        if (fd < 0) {
            fprintf(stderr, "%s: cannot listen on %s port %s: %s\n", name,
                    o->host, o->port, strerror(-fd));
            return -1;
        }
        if (i == 0 && strcmp(o->port, "0") == 0) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
                int p = ss.ss_family == AF_INET6
                            ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
                snprintf(o->port, sizeof o->port, "%d", p);
            }
        }
        *(int *)(void *)((char *)servers + (size_t)i * elem + off) = fd;
    }
    return 0;
}

#endif /* WEFT_EXAMPLES_COMMON_H */
