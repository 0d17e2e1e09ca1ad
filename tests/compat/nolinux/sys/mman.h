/* SPDX-License-Identifier: MIT */
/*
 * `make check-portability`: glibc's <sys/mman.h> less the flags FreeBSD
 * or macOS lack (MAP_NORESERVE, MAP_STACK where it means a stack region
 * of the kind weft does not make), so that the fallbacks compile and an
 * unguarded use does not.
 */
#include_next <sys/mman.h>
#undef MAP_NORESERVE
#undef MAP_STACK
