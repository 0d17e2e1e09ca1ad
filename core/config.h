/* SPDX-License-Identifier: MIT */
/*
 * Build switches every layer reads: which sanitizer is on, branch hints,
 * static TLS, and the return thunk that resumes after a switch.
 */
#ifndef WEFT__CORE_CONFIG_H
#define WEFT__CORE_CONFIG_H

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif
#ifndef WEFT__ASAN
#define WEFT__ASAN 0
#endif
#ifndef WEFT__TSAN
#define WEFT__TSAN 0
#endif

#if WEFT__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT__TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * For a function that parks its fiber and returns straight to user code
 * when the fiber resumes: return through __x86_return_thunk
 * (arch/switch_x86_64_sysv_elf.S) instead of a plain ret.
 *
 * After a switch the CPU's return stack holds the return addresses of the
 * fiber that switched away. Where both fibers had called from the same
 * place (the same function, or the same helper) that is right and ret is
 * the best return there is. Where they had not (a producer and a
 * consumer), ret mispredicts on every switch; an indirect jump is
 * predicted from the branch history, which tells the fibers apart. The
 * thunk picks: every switch_away records in weft__resume_ra its
 * function's return address, which is what the return stack will offer
 * the fiber resumed next; the thunk returns with ret when that is its own
 * return address, and with pop + jmp otherwise. A channel ping-pong
 * between two different functions went from 48 to 36 ns per round trip,
 * and one between two fibers of the same function through helpers kept
 * its ret (a jump alone cost it 15 ns there); `make bench` measures both.
 * GCC on x86_64 ELF only (clang 14 lacks the attribute), with the
 * assembly switch (whose ELF file defines the thunk); empty elsewhere, on
 * Mach-O and with the portable switch (ARCH=generic).
 */
#if !defined(WEFT__RESUME_RETURN) && defined(__x86_64__) &&                    \
    defined(__ELF__) && !defined(WEFT_ARCH_GENERIC) &&                         \
    defined(__has_attribute)
#if __has_attribute(function_return)
#define WEFT__RESUME_RETURN __attribute__((function_return("thunk-extern")))
#define WEFT__RESUME_HINT 1 /* keep weft__resume_ra for the thunk */
#endif
#endif
#ifndef WEFT__RESUME_RETURN
#define WEFT__RESUME_RETURN
#endif
#ifndef WEFT__RESUME_HINT
#define WEFT__RESUME_HINT 0
#endif

/* Thread-local state that signal handlers and hot paths read: static TLS,
 * no __tls_get_addr call even in the shared library. */
#define WEFT__TLS __thread __attribute__((tls_model("initial-exec")))

#endif /* WEFT__CORE_CONFIG_H */
