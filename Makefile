# SPDX-License-Identifier: MIT
#
# weft. `make test` and `make bench` are all a fresh Debian 12 machine
# needs: each installs what it lacks (scripts/deps.sh) or says what to run.
#
#   make                 libweft.a, libweft.so, weft.pc in $(BUILD)
#   make test            native, ASan+UBSan, TSan, aarch64 and riscv64 (qemu)
#                        suites, and the portable switch (ARCH=generic);
#                        with LIBKQUEUE_SRC=dir also the kqueue backend
#                        under libkqueue (make test-kqueue)
#   make bench           weft against pthreads, Boost.Context, State Threads
#                        and Go: one table (bench/results/latest.md, .csv)
#                        and the scaling study's pictures (.svg)
#                        QUICK=1: shorter runs; ONLY=name: one benchmark
#                        (ONLY=micro runs bench/bench_micro.c)
#   make install PREFIX=/usr/local
#   make format-check    clang-format, config in .clang-format
#   make fuzz            libFuzzer on the scheduler (FUZZ_TIME=60 seconds)
# Options: FPENV=1 (save the FP control state in every switch),
#          ARCH=generic (the portable C switch: a CPU without a port),
#          POLLER=epoll|kqueue (default by uname -s),
#          ALLOC=libc (no jemalloc), SAN=asan|tsan, CC=..., BUILD=dir,
#          EXTRA_LIBS (added to every link line).

# gcc on Linux unless CC says otherwise; elsewhere the system's cc (clang
# on macOS and FreeBSD).
UNAME_S := $(shell uname -s)
CC ?= cc
ifeq ($(origin CC),default)
ifeq ($(UNAME_S),Linux)
CC := gcc
endif
endif
FPENV ?= 0
ALLOC ?= jemalloc
SAN ?=
BUILD ?= build
PREFIX ?= /usr/local
RUN ?=
PKG_CONFIG ?= pkg-config

# The context switch: the CPU's assembly port for the compiler's target
# (the CPU, which Apple spells arm64 for aarch64: arm64-apple-darwin...,
# and the object format: Mach-O on Apple's systems, ELF elsewhere), or
# with ARCH=generic the portable C one (arch/switch_generic.c), for a CPU
# without a port. The register probe of the conformance suite is per CPU
# (and object format); a generic build on a CPU without one skips that
# check.
ARCH ?=
MACHINE := $(shell $(CC) -dumpmachine)
ifneq ($(findstring apple,$(MACHINE)),)
BINFMT := macho
else
BINFMT := elf
endif
ifneq ($(findstring x86_64,$(MACHINE)),)
SWITCH_SRC := arch/switch_x86_64_sysv_$(BINFMT).S
PROBE_SRC := tests/arch/probe_x86_64_sysv_$(BINFMT).S
else ifneq ($(findstring aarch64,$(MACHINE))$(findstring arm64,$(MACHINE)),)
SWITCH_SRC := arch/switch_arm64_aapcs_$(BINFMT).S
PROBE_SRC := tests/arch/probe_arm64_aapcs_$(BINFMT).S
else ifneq ($(findstring riscv64,$(MACHINE)),)
SWITCH_SRC := arch/switch_riscv64_lp64d_elf.S
PROBE_SRC := tests/arch/probe_riscv64_lp64d_elf.S
else ifneq ($(ARCH),generic)
$(error weft has no context switch for $(MACHINE); see arch/PORTING.md, or build with ARCH=generic)
endif
ifeq ($(ARCH),generic)
SWITCH_SRC := arch/switch_generic.c
ARCH_CFLAGS := -DWEFT_ARCH_GENERIC=1
ARCH_LIBS := -lm # its FP-environment build calls fegetmode/fesetmode
else ifneq ($(ARCH),)
$(error ARCH=$(ARCH): only ARCH=generic is known (the default picks the CPU's port))
endif

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Werror
OPT ?= -O2 -g
CFLAGS_ALL := -std=c11 $(OPT) $(WARN) -pthread \
              -DWEFT_FPENV=$(FPENV) $(ARCH_CFLAGS) $(EXTRA_CFLAGS)
ASFLAGS_ALL := -g -DWEFT_FPENV=$(FPENV) $(ARCH_CFLAGS) $(EXTRA_CFLAGS)
EXTRA_LIBS ?=
LIBS := -pthread $(ARCH_LIBS) $(EXTRA_LIBS)

ifeq ($(SAN),asan)
CFLAGS_ALL += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LIBS += -fsanitize=address,undefined
ALLOC := libc
else ifeq ($(SAN),tsan)
CFLAGS_ALL += -fsanitize=thread
LIBS += -fsanitize=thread
ALLOC := libc
endif

ifeq ($(ALLOC),jemalloc)
CFLAGS_ALL += -DWEFT_ALLOC_JEMALLOC=1
JEMALLOC_LIBS ?= $(shell $(PKG_CONFIG) --libs jemalloc 2>/dev/null || echo -ljemalloc)
LIBS += $(JEMALLOC_LIBS)
else
CFLAGS_ALL += -DWEFT_ALLOC_JEMALLOC=0
endif

LIB_CFLAGS := $(CFLAGS_ALL) -DWEFT_BUILDING -fvisibility=hidden

# The poller backend: epoll on Linux, kqueue on the BSDs and macOS.
ifeq ($(UNAME_S),Linux)
POLLER ?= epoll
else
POLLER ?= kqueue
endif
LIB_SRC := $(filter-out io/poll_%.c,$(wildcard core/*.c sched/*.c io/*.c)) \
           io/poll_$(POLLER).c
OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/arch/switch.o \
       $(BUILD)/obj/arch/switch_fpenv.o
PIC := $(OBJ:$(BUILD)/obj/%=$(BUILD)/pic/%)
HDR := $(wildcard include/*.h arch/*.h core/*.h sched/*.h io/*.h)

.PHONY: all lib test test-run test-valgrind test-port test-native test-asan test-tsan \
        test-aarch64 test-riscv64 test-generic test-kqueue \
        check-build check-kqueue check-portability examples test-examples fuzz fuzz-run bench install uninstall format format-check clean deps \
        deps-cross deps-lib

all lib: $(if $(filter jemalloc,$(ALLOC)),deps-lib) $(BUILD)/libweft.a \
         $(BUILD)/libweft.so $(BUILD)/weft.pc

deps-lib:
	@./scripts/deps.sh lib

# ---- library ----

# A build folder holds one configuration: every object depends on a stamp
# of the options that change what is built (CC, OPT, EXTRA_CFLAGS, FPENV,
# ALLOC, SAN, POLLER: all of them end up in these variables), rewritten
# only when they change. `make install ALLOC=libc` after a jemalloc build
# so rebuilds everything instead of installing the jemalloc objects. The
# tests, benchmarks and libweft.so are built from these objects.
sq = $(subst ','\'',$(1))
comma := ,
FLAGS_VARS = $(CC)|$(LIB_CFLAGS)|$(ASFLAGS_ALL)|$(LIBS)|$(LIB_SRC)|\
             $(CHECK_CFLAGS)|$(CHECK_LIBS)|$(BOOST_LIBS)|$(ST_LIBS)|$(TEST_DEFS)
$(BUILD)/flags.stamp: FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(call sq,$(FLAGS_VARS))' ]; then \
	    printf '%s\n' '$(call sq,$(FLAGS_VARS))' > $@; fi

$(BUILD)/obj/%.o: %.c $(HDR) $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@
$(BUILD)/pic/%.o: %.c $(HDR) $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -fPIC -c $< -o $@

# The switch is built without sanitizers (it moves between stacks behind
# their back; core/coro.h tells them), so the conformance suite can link it.
SWITCH_FLAGS = $(if $(filter %.c,$(SWITCH_SRC)),\
                 $(filter-out -fsanitize% -fno-sanitize%,$(LIB_CFLAGS)),\
                 $(ASFLAGS_ALL))
$(BUILD)/obj/arch/switch.o $(BUILD)/pic/arch/switch.o: $(SWITCH_SRC) arch/context.h $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(SWITCH_FLAGS) -fPIC -c $< -o $@
$(BUILD)/obj/arch/switch_fpenv.o $(BUILD)/pic/arch/switch_fpenv.o: $(SWITCH_SRC) arch/context.h $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(SWITCH_FLAGS) -fPIC -UWEFT_FPENV -DWEFT_FPENV=1 \
	    -DWEFT__SYMSUFFIX=_fpenv -c $< -o $@

$(BUILD)/libweft.a: $(OBJ)
	@rm -f $@
	$(AR) rcs $@ $^
# The library's name for the dynamic linker: an ELF soname, or a Mach-O
# install name (macOS's ld has no -soname; the file keeps its .so name).
ifeq ($(UNAME_S),Darwin)
SONAME := -Wl,-install_name,$(PREFIX)/lib/libweft.so.0
else
SONAME := -Wl,-soname,libweft.so.0
endif
$(BUILD)/libweft.so: $(PIC)
	$(CC) -shared $(SONAME) -o $@ $^ $(LIBS)

# Fiber code built with -fstack-clash-protection touches each page of a
# large frame in order, so any frame faults in the 64 KiB stack guard
# (without it, frames up to 64 KiB do): weft.pc's Cflags carry it when the
# compiler takes it (GCC 8+, clang 11+ on x86_64).
PC_CFLAGS := $(shell $(CC) -Werror -fstack-clash-protection -x c -c \
                 -o /dev/null /dev/null 2>/dev/null && \
                 echo -fstack-clash-protection)

# What weft.pc says depends on PREFIX (make install PREFIX=...), LIBS,
# FPENV and PC_CFLAGS: a stamp that changes only when they do.
PC_VARS := $(PREFIX)|$(LIBS)|$(FPENV)|$(PC_CFLAGS)
$(BUILD)/pc.stamp: FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(PC_VARS)' ]; then \
	    echo '$(PC_VARS)' > $@; fi
FORCE:

$(BUILD)/weft.pc: weft.pc.in Makefile $(BUILD)/pc.stamp
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBS@|$(filter-out -pthread,$(LIBS))|' \
	    -e 's|@FPENV@|$(FPENV)|' -e 's|@CFLAGS@|$(PC_CFLAGS)|' $< > $@

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/weft.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libweft.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libweft.so $(DESTDIR)$(PREFIX)/lib/libweft.so.0
	ln -sf libweft.so.0 $(DESTDIR)$(PREFIX)/lib/libweft.so
	install -m 644 $(BUILD)/weft.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/weft.h \
	    $(DESTDIR)$(PREFIX)/lib/libweft.a $(DESTDIR)$(PREFIX)/lib/libweft.so \
	    $(DESTDIR)$(PREFIX)/lib/libweft.so.0 \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc

# ---- tests ----

CHECK_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS ?= $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)
TEST_CFLAGS := $(CFLAGS_ALL) -Iinclude -Iarch $(CHECK_CFLAGS) $(TEST_DEFS)
SUITES := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))
TEST_BINS := $(BUILD)/tests/conform $(BUILD)/tests/smoke $(SUITES)

$(BUILD)/tests/conform: tests/arch/conform.c $(PROBE_SRC) $(BUILD)/obj/arch/switch.o $(BUILD)/obj/arch/switch_fpenv.o arch/context.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wpedantic -fsanitize% -fno-sanitize%,$(CFLAGS_ALL)) \
	    -fasynchronous-unwind-tables $(if $(PROBE_SRC),,-DWEFT_CONFORM_NO_PROBE=1) \
	    -Iarch -o $@ tests/arch/conform.c $(PROBE_SRC) \
	    $(BUILD)/obj/arch/switch.o $(BUILD)/obj/arch/switch_fpenv.o -lm \
	    $(filter-out -fsanitize%,$(LIBS))

# The runtime end to end with libc alone (a CPU without libcheck): spawn,
# sleep, socket IO, submission from a plain thread, channels.
$(BUILD)/tests/smoke: tests/arch/smoke.c include/weft.h $(BUILD)/libweft.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Iinclude -o $@ $< $(BUILD)/libweft.a $(LIBS)

$(BUILD)/tests/check_%: tests/check_%.c tests/testutil.h $(BUILD)/libweft.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(TEST_CFLAGS_$*) -o $@ $< $(BUILD)/libweft.a \
	    $(CHECK_LIBS) $(LIBS)

# check_core's big-frame tests need frames the compiler does not probe page
# by page (as code built without -fstack-clash-protection has).
TEST_CFLAGS_core := $(if $(PC_CFLAGS),-fno-stack-clash-protection)

# Leaks one promise and one channel on purpose: valgrind must see them in an
# ALLOC=libc build (test-native).
$(BUILD)/tests/leak_future: tests/leak_future.c $(BUILD)/libweft.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Iinclude -o $@ $< $(BUILD)/libweft.a $(LIBS)

check-build: $(TEST_BINS)

# The kqueue backend cannot run on Linux; this at least type-checks it
# against FreeBSD's declarations (tests/compat/kqueue), with gcc and clang.
# _DEFAULT_SOURCE gives glibc the visibility the BSDs have by default.
KQ_CHECK := -std=c11 $(WARN) -D_DEFAULT_SOURCE -fsyntax-only \
            -Itests/compat/kqueue io/poll_kqueue.c
# io/signal.c's kqueue half is chosen by the platform: type-checked with
# __linux__ undefined.
KQ_SIGNAL_CHECK := -std=c11 $(WARN) -D_DEFAULT_SOURCE -DWEFT_BUILDING \
                   -U__linux__ -fsyntax-only -Itests/compat/kqueue \
                   -Iinclude io/signal.c
check-kqueue:
	$(CC) $(KQ_CHECK)
	$(CC) $(KQ_SIGNAL_CHECK)
	@if command -v clang >/dev/null; then clang $(KQ_CHECK); \
	    clang $(KQ_SIGNAL_CHECK); fi
	@echo "io/poll_kqueue.c, io/signal.c (kqueue): type-check against FreeBSD's declarations"

# What can be checked here of the systems that cannot run here (README,
# "Platforms"), beside check-kqueue: every library source, the portable
# switch and tests/arch's programs compiled as on a system that is not
# Linux (__linux__ undefined, the kqueue poller, and glibc's headers less
# what FreeBSD or macOS lack: tests/compat/nolinux), with gcc and clang;
# the thread-id syscall in core/thread.c alone; and the Mach-O switches
# and register probes assembled for macOS on Intel and on Apple silicon
# (clang). Nothing here runs on those systems.
PORT_SRC := $(filter-out io/poll_%.c,$(wildcard core/*.c sched/*.c io/*.c)) \
            io/poll_kqueue.c
PORT_CHECK := -std=c11 $(WARN) -pthread -DWEFT_BUILDING -U__linux__ \
              -isystem tests/compat/nolinux -Itests/compat/kqueue -fsyntax-only
MACHO_SRC := x86_64:arch/switch_x86_64_sysv_macho.S \
             arm64:arch/switch_arm64_aapcs_macho.S \
             x86_64:tests/arch/probe_x86_64_sysv_macho.S \
             arm64:tests/arch/probe_arm64_aapcs_macho.S
check-portability: check-kqueue
	@set -e; for cc in $(CC) clang; do for f in $(PORT_SRC); do \
	    $$cc $(PORT_CHECK) $$f; done; \
	    $$cc $(PORT_CHECK) -DWEFT_ARCH_GENERIC=1 -Iarch arch/switch_generic.c; \
	    $$cc $(filter-out -Wpedantic,$(PORT_CHECK)) -Iarch tests/arch/conform.c; \
	    $$cc $(PORT_CHECK) -Iinclude tests/arch/smoke.c; \
	    done
	@echo "library sources, arch/switch_generic.c, tests/arch/conform.c and smoke.c: compile without __linux__ and Linux-only flags (gcc, clang)"
	@if grep -rn SYS_gettid --include='*.[ch]' arch core sched io include | \
	    grep -v '^core/thread.c:'; then \
	    echo "SYS_gettid outside core/thread.c"; exit 1; fi
	@set -e; for m in $(MACHO_SRC); do cpu=$${m%%:*}; f=$${m#*:}; \
	    for v in "" "-DWEFT_FPENV=1 -DWEFT__SYMSUFFIX=_fpenv"; do \
	    clang -target $$cpu-apple-macos -Iarch $$v -c $$f -o /dev/null; \
	    done; echo "$$f: assembles for $$cpu-apple-macos (not run: no Mac here)"; done

# Runs this build's suites; RUN is a prefix such as qemu. The conformance
# suite switches raw contexts without sanitizer annotations, so it is built
# without sanitizers even in the sanitizer builds; and with unwind tables,
# which its backtrace check reads (riscv64's GCC emits none by default).
test-run: check-build
	$(RUN) $(BUILD)/tests/conform
	$(RUN) $(BUILD)/tests/smoke
	@set -e; for t in $(SUITES); do echo "== $$t"; $(RUN) $$t; done

# What a port runs before libcheck exists for its CPU: the conformance
# suite and the smoke program.
test-port: $(BUILD)/tests/conform $(BUILD)/tests/smoke
	$(RUN) $(BUILD)/tests/conform
	$(RUN) $(BUILD)/tests/smoke

deps:
	@./scripts/deps.sh native
deps-cross:
	@./scripts/deps.sh cross

test: deps deps-cross
	$(MAKE) --no-print-directory test-native
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-tsan
	$(MAKE) --no-print-directory test-aarch64
	$(MAKE) --no-print-directory test-riscv64
	$(MAKE) --no-print-directory test-generic
	$(MAKE) --no-print-directory test-kqueue
	$(MAKE) --no-print-directory fuzz FUZZ_TIME=60
	@echo "weft: all suites passed (native, asan+ubsan, tsan, aarch64/qemu, riscv64/qemu, generic switch,$(if $(strip $(LIBKQUEUE_SRC)), kqueue on libkqueue$(comma)) 60 s of fuzzing)"

test-native: deps
	$(MAKE) --no-print-directory check-portability
	MAKE='$(MAKE)' tests/build_options.sh
	$(MAKE) --no-print-directory test-run BUILD=build/native
	$(MAKE) --no-print-directory test-examples BUILD=build/native
	$(MAKE) --no-print-directory test-run BUILD=build/native-fpenv FPENV=1
	$(MAKE) --no-print-directory test-run BUILD=build/native-clang CC=clang
	@if command -v valgrind >/dev/null; then \
	    echo "== valgrind: coroutines (stack registration)"; \
	    CK_FORK=no CK_RUN_CASE=coroutines valgrind -q --error-exitcode=9 \
	        build/native/tests/check_core && \
	    echo "== valgrind: the end-of-fiber hand-over (memcheck, leaks)" && \
	    : "fair scheduling: valgrind runs one thread at a time, and by" && \
	    : "default a thread looping on short syscalls can starve a waker" && \
	    CK_FORK=no CK_RUN_CASE=handover WEFT_TEST_SLOW=1 valgrind -q \
	        --fair-sched=yes --leak-check=full --error-exitcode=9 \
	        build/native/tests/check_futures; \
	else echo "valgrind not installed: skipping the valgrind run"; fi
	@if command -v valgrind >/dev/null; then \
	    echo "== valgrind: leaks of runtime objects show in an ALLOC=libc build"; \
	    $(MAKE) --no-print-directory BUILD=build/native-libc ALLOC=libc \
	        build/native-libc/tests/leak_future || exit 1; \
	    valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
	        --error-exitcode=9 build/native-libc/tests/leak_future \
	        > build/native-libc/leak.log 2>&1; st=$$?; \
	    if [ $$st = 9 ] && grep -q 'definitely lost' build/native-libc/leak.log; \
	    then echo "tests/leak_future.c: its leaks reported, as they must be"; \
	    else cat build/native-libc/leak.log; \
	        echo "valgrind missed the leaks of tests/leak_future.c (status $$st)"; \
	        exit 1; fi; \
	fi
	@if command -v gdb >/dev/null; then \
	    tests/arch/gdb_backtrace.sh build/native/tests/conform; \
	else echo "gdb not installed: skipping the debugger backtrace check"; fi

# The loop and IO suites under valgrind memcheck: not in make test, as on
# the VMs here they took 8 to 11 minutes of CI's 20 (most of it in the
# kernel, under valgrind alone; 11 s for check_sched on a good run). ASan,
# UBSan and TSan run every suite in make test.
test-valgrind: check-build
	CK_FORK=no valgrind -q --fair-sched=yes --leak-check=full \
	    --error-exitcode=9 $(BUILD)/tests/check_sched
	CK_FORK=no CK_RUN_CASE=io valgrind -q --fair-sched=yes \
	    --leak-check=full --error-exitcode=9 $(BUILD)/tests/check_io

test-asan: deps
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(MAKE) --no-print-directory test-run BUILD=build/asan SAN=asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(MAKE) --no-print-directory test-examples BUILD=build/asan SAN=asan

test-tsan: deps
	TSAN_OPTIONS=halt_on_error=1 \
	    $(MAKE) --no-print-directory test-run BUILD=build/tsan SAN=tsan

# qemu loads the arm64 glibc installed by multiarch (libc6:arm64), so it
# must also take that package's ld.so: "-L /". The cross toolchain's older
# ld.so (-L /usr/aarch64-linux-gnu) with the newer libc hangs the first
# pthread_create (and with it libcheck's fork mode).
AARCH64_PC := /usr/lib/aarch64-linux-gnu/pkgconfig
test-aarch64: deps-cross
	WEFT_TEST_SLOW=1 $(MAKE) --no-print-directory test-run BUILD=build/aarch64 \
	    CC=aarch64-linux-gnu-gcc EXTRA_CFLAGS=-mbranch-protection=standard \
	    PKG_CONFIG="env PKG_CONFIG_LIBDIR=$(AARCH64_PC) pkg-config" \
	    JEMALLOC_LIBS=/usr/lib/aarch64-linux-gnu/libjemalloc.so.2 \
	    RUN="qemu-aarch64 -cpu max -L /"

# The kqueue backend, run: every libcheck suite with POLLER=kqueue on
# libkqueue (a userspace kqueue over epoll, not packaged by Debian), built
# with cmake from the source tree LIBKQUEUE_SRC names and installed under
# $(KQ_BUILD)/libkqueue/prefix. Without LIBKQUEUE_SRC it says so and does
# nothing. WEFT_TEST_LIBKQUEUE leaves out the tests of what libkqueue does
# differently from a kernel kqueue (README, "Platforms"); the examples'
# tests are not run here (examples/embed needs weft_loop_fd).
LIBKQUEUE_SRC ?=
KQ_BUILD := build/kqueue
KQ_PREFIX = $(abspath $(KQ_BUILD))/libkqueue/prefix
test-kqueue:
ifeq ($(strip $(LIBKQUEUE_SRC)),)
	@echo "test-kqueue: skipped (no LIBKQUEUE_SRC=dir: a libkqueue source tree to run the kqueue backend on)"
else
	@./scripts/deps.sh native kqueue
	@set -e; src=$$(cd '$(call sq,$(LIBKQUEUE_SRC))' 2>/dev/null && pwd) || \
	    { echo "test-kqueue: LIBKQUEUE_SRC=$(LIBKQUEUE_SRC) is not a directory"; exit 1; }; \
	    [ -f "$$src/CMakeLists.txt" ] || \
	    { echo "test-kqueue: $$src is not a libkqueue source tree (no CMakeLists.txt)"; exit 1; }; \
	    b=$(KQ_BUILD)/libkqueue; \
	    if [ "$$(cat $$b/source 2>/dev/null)" != "$$src" ]; then \
	        rm -rf $$b; mkdir -p $$b; \
	        echo "== libkqueue from $$src (cmake, into $(KQ_PREFIX))"; \
	        cmake -S "$$src" -B $$b/build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	            -DCMAKE_INSTALL_PREFIX=$(KQ_PREFIX) \
	            -DCMAKE_INSTALL_LIBDIR=lib -DENABLE_STATIC=OFF \
	            -DENABLE_TESTING=OFF > $$b/cmake.log 2>&1 || \
	            { cat $$b/cmake.log; exit 1; }; \
	        echo "$$src" > $$b/source; \
	    fi; \
	    cmake --build $$b/build -j2 > $$b/build.log 2>&1 || \
	        { cat $$b/build.log; exit 1; }; \
	    cmake --install $$b/build > $$b/install.log 2>&1 || \
	        { cat $$b/install.log; exit 1; }; \
	    test -e $(KQ_PREFIX)/include/kqueue/sys/event.h
	$(MAKE) --no-print-directory test-run BUILD=$(KQ_BUILD) POLLER=kqueue \
	    EXTRA_CFLAGS=-I$(KQ_PREFIX)/include/kqueue \
	    EXTRA_LIBS='-L$(KQ_PREFIX)/lib -Wl,-rpath,$(KQ_PREFIX)/lib -lkqueue' \
	    TEST_DEFS=-DWEFT_TEST_LIBKQUEUE=1
	@echo "test-kqueue: every suite passed with POLLER=kqueue on libkqueue (tests of its known differences left out)"
endif

# riscv64 under qemu-user: Debian 12 has no riscv64 multiarch, so neither
# libcheck nor jemalloc: the conformance suite and the smoke program, in
# the default and the FP-environment build, ALLOC=libc. The cross
# toolchain's own libc is the only riscv64 glibc here, so qemu takes it
# and its ld.so together (-L /usr/riscv64-linux-gnu).
# Last, the portable switch there (ARCH=generic on a second CPU).
RISCV64 := CC=riscv64-linux-gnu-gcc ALLOC=libc \
           RUN="qemu-riscv64 -L /usr/riscv64-linux-gnu"
test-riscv64: deps-cross
	$(MAKE) --no-print-directory test-port BUILD=build/riscv64 $(RISCV64)
	$(MAKE) --no-print-directory test-port BUILD=build/riscv64-fpenv FPENV=1 \
	    $(RISCV64)
	$(MAKE) --no-print-directory test-port BUILD=build/riscv64-generic \
	    ARCH=generic $(RISCV64)

# The portable switch (ARCH=generic), natively: conformance, smoke and the
# full libcheck suite; conformance and smoke in its FP-environment build.
test-generic: deps
	$(MAKE) --no-print-directory test-run ARCH=generic BUILD=build/generic
	$(MAKE) --no-print-directory test-port ARCH=generic FPENV=1 \
	    BUILD=build/generic-fpenv

# ---- fuzzing ----

# libFuzzer drives random programs of spawn/yield/sleep/await/cancel/
# channel/mutex/event/timer operations (tests/fuzz/fuzz_sched.c) under
# ASan+UBSan and checks the runtime's invariants after each.
FUZZ_TIME ?= 60
fuzz:
	@./scripts/deps.sh native fuzz
	$(MAKE) --no-print-directory fuzz-run BUILD=build/fuzz CC=clang SAN=asan \
	    EXTRA_CFLAGS=-fsanitize=fuzzer-no-link
fuzz-run: $(BUILD)/libweft.a
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -Iinclude -o $(BUILD)/fuzz_sched \
	    tests/fuzz/fuzz_sched.c $(BUILD)/libweft.a $(LIBS) -fsanitize=fuzzer
	@mkdir -p $(BUILD)/corpus
	$(BUILD)/fuzz_sched -max_total_time=$(FUZZ_TIME) -max_len=256 \
	    -timeout=20 -print_final_stats=1 -artifact_prefix=$(BUILD)/ \
	    $(BUILD)/corpus

# ---- benchmarks ----

BOOST_LIBS = $(shell test -e /usr/include/boost/context/detail/fcontext.hpp && echo -l:libboost_context.a)
ST_LIBS = $(shell test -e /usr/include/st.h && echo -lst)
BENCH_CFLAGS := $(CFLAGS_ALL) -O2 -Iinclude -Iarch $(if $(BOOST_LIBS),-DWEFT_HAVE_BOOST=1) \
                $(if $(ST_LIBS),-DWEFT_HAVE_ST=1)
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/bench_*.c))

$(BUILD)/bench/%: bench/%.c bench/bench.h bench/baselines.h $(BUILD)/libweft.a
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libweft.a $(BOOST_LIBS) $(ST_LIBS) $(LIBS) -lm

# bench_core times the portable switch (arch/switch_generic.c, make
# ARCH=generic) beside the CPU's: built again under other names.
BENCH_GENERIC_OBJ := $(BUILD)/obj/arch/bench_generic.o \
                     $(BUILD)/obj/arch/bench_generic_fpenv.o
$(BUILD)/bench/bench_core: $(BENCH_GENERIC_OBJ)
$(BUILD)/obj/arch/bench_generic.o: arch/switch_generic.c arch/context.h $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize% -fno-sanitize%,$(LIB_CFLAGS)) \
	    -DWEFT_ARCH_GENERIC=1 -DWEFT__SYMSUFFIX=_generic -c $< -o $@
$(BUILD)/obj/arch/bench_generic_fpenv.o: arch/switch_generic.c arch/context.h $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize% -fno-sanitize%,$(LIB_CFLAGS)) \
	    -DWEFT_ARCH_GENERIC=1 -UWEFT_FPENV -DWEFT_FPENV=1 \
	    -DWEFT__SYMSUFFIX=_generic_fpenv -c $< -o $@

# The Go comparators (bench/go/*.go: go_spawn for bench_scale, go_micro
# for bench_micro), built when Go is installed (make bench installs
# golang-go when it can; without it the comparisons are "-").
GO = $(shell command -v go 2>/dev/null)
GO_BENCHES := $(patsubst bench/go/%.go,$(BUILD)/bench/go_%,$(wildcard bench/go/*.go))
$(BUILD)/bench/go_%: bench/go/%.go
	@mkdir -p $(dir $@)
	cd bench/go && GOCACHE=$(abspath $(BUILD))/gocache GO111MODULE=off \
	    $(GO) build -o $(abspath $@) $*.go

bench: deps
	@./scripts/deps.sh boost st go http plot || true
	$(MAKE) --no-print-directory -j2 bench-run BUILD=build/bench
bench-run: $(BENCHES) $(if $(GO),$(GO_BENCHES)) $(BUILD)/examples/http
	@WEFT_BENCH_QUICK=$(QUICK) ./bench/run.sh $(BUILD)/bench $(ONLY)

# ---- examples ----
# Servers a user would copy (examples/*.c), built next to their sources:
# examples/echo, examples/embed (README, "Examples").
EXAMPLE_BINS := $(patsubst %.c,%,$(wildcard examples/*.c))
examples: $(EXAMPLE_BINS)
examples/%: examples/%.c examples/common.h $(BUILD)/libweft.a
	$(CC) $(CFLAGS_ALL) -Iinclude -o $@ $< $(BUILD)/libweft.a $(LIBS)

# The same, per build, for tests/examples.c, which starts them as
# processes and drives them over sockets (make test: native and ASan).
BUILD_EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
$(BUILD)/examples/%: examples/%.c examples/common.h $(BUILD)/libweft.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Iinclude -o $@ $< $(BUILD)/libweft.a $(LIBS)
$(BUILD)/tests/examples: tests/examples.c tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(CHECK_LIBS) $(LIBS)
test-examples: $(BUILD_EXAMPLES) $(BUILD)/tests/examples
	@echo "== $(BUILD)/tests/examples"
	WEFT_EXAMPLES=$(BUILD)/examples $(BUILD)/tests/examples

# ---- style ----

FORMAT_SRC := $(shell git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]')
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build $(EXAMPLE_BINS)
