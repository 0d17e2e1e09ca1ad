/* SPDX-License-Identifier: MIT */
/*
 * `make check-portability`: glibc's <sys/socket.h> less what macOS lacks
 * (MSG_NOSIGNAL, SOCK_NONBLOCK, SOCK_CLOEXEC, accept4), with what only it
 * has (SO_NOSIGPIPE), so that the fallbacks compile. glibc's enum
 * constants stay behind the macros: an unguarded MSG_NOSIGNAL still
 * compiles here; accept4 is poisoned.
 */
#include_next <sys/socket.h>
#undef MSG_NOSIGNAL
#undef SOCK_NONBLOCK
#undef SOCK_CLOEXEC
#ifndef SO_NOSIGPIPE
#define SO_NOSIGPIPE 0x1022 /* macOS's value */
#endif
#pragma GCC poison accept4
