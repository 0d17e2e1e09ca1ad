/* SPDX-License-Identifier: MIT */
/*
 * `make check-portability`: glibc's <errno.h> less the Linux-only codes
 * weft names (ENONET), so that an unguarded use does not compile.
 */
#include_next <errno.h>
#undef ENONET
