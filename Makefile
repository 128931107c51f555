# ckshim - transparent, unprivileged checkpoint/restore. One Makefile.
#
#   make            build/libshim.so, build/coord, build/ckshim-restore
#   make test       unit + integration tests, ends with "N passed, N failed"
#   make bench      speed against lz4 -1 / lz4 -d (docs/PERFORMANCE.md)
#   make demo       the Python Person example: run, checkpoint, kill, restore
#   make install PREFIX=/usr/local
#   make deb        a Debian package in build/ (debian/, dpkg-buildpackage)
#
# Dependencies (Debian): liblz4-dev libunwind-dev libhiredis-dev libcmocka-dev pkg-config
# (and redis-server for the redis counter tests);
# scripts/install-deps.sh installs what is missing.

CC ?= cc
PREFIX ?= /usr/local
B := build

PKGS := liblz4 libunwind hiredis libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -llz4 -lunwind -lhiredis -lsodium)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wpointer-arith -Wno-unused-parameter -Wno-format-truncation
ifeq ($(WERROR),1)
WARN += -Werror
endif
BASE_CFLAGS := -std=gnu11 -O2 -g -D_GNU_SOURCE $(WARN) -Icommon -Ifds
CFLAGS ?=
CPPFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)

# The restorer is freestanding: no libc, no stack protector, no TLS, linked
# static and non-PIE at a fixed address far from where programs live (see
# docs/DESIGN.md, "The restorer window").
RESTORER_BASE := 0x100000000000
FREE_CFLAGS := -std=gnu11 -O2 -g $(WARN) -Icommon -ffreestanding -fno-stack-protector \
	-fpie -fno-builtin -fcf-protection=none -mno-red-zone -fno-asynchronous-unwind-tables
FREE_LDFLAGS := -static -nostdlib -no-pie -Wl,-Ttext-segment=$(RESTORER_BASE) \
	-Wl,--build-id=none -Wl,-z,noexecstack

COMMON_SRC := $(wildcard common/*.c)
COMMON_FREE_SRC := common/xxh64.c common/lz4dec.c common/procparse.c
PRELOAD_SRC := $(wildcard preload/*.c) $(wildcard preload/*.S)
RESTORER_SRC := $(wildcard restorer/*.c) $(wildcard restorer/*.S)
COORD_SRC := $(wildcard coordinator/*.c)
# One file per kind of descriptor (capture and restore side by side),
# linked into both the shim and coord: fds/fdkind.h.
FDS_SRC := $(wildcard fds/*.c)

COMMON_PIC_OBJ := $(patsubst %.c,$(B)/pic/%.o,$(COMMON_SRC))
COMMON_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(COMMON_SRC))
COMMON_FREE_OBJ := $(patsubst %.c,$(B)/free/%.o,$(COMMON_FREE_SRC))
PRELOAD_OBJ := $(patsubst %,$(B)/pic/%.o,$(basename $(PRELOAD_SRC) $(FDS_SRC)))
RESTORER_OBJ := $(patsubst %,$(B)/free/%.o,$(basename $(RESTORER_SRC)))
COORD_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(COORD_SRC) $(FDS_SRC))

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
PROG_SRC := $(wildcard tests/integration/progs/*.c)
PROG_BIN := $(patsubst tests/integration/progs/%.c,$(B)/tests/progs/%,$(PROG_SRC))
EXAMPLE_C := $(B)/examples/counter $(B)/examples/hook_client

TARGETS := $(B)/libshim.so $(B)/coord $(B)/ckshim-restore

.PHONY: all test unit integration bench demo install deb clean format format-check deps tests-build
all: $(TARGETS)

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@
$(B)/pic/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -MMD -MP -c $< -o $@
$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@
$(B)/free/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(FREE_CFLAGS) -MMD -MP -c $< -o $@
$(B)/free/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(FREE_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libshim.so: $(PRELOAD_OBJ) $(COMMON_PIC_OBJ)
	$(CC) -shared -fPIC -Wl,-z,noexecstack -Wl,--no-undefined -Wl,-z,start-stop-visibility=hidden $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -ldl -lpthread

$(B)/ckshim-restore: $(RESTORER_OBJ) $(COMMON_FREE_OBJ)
	$(CC) $(FREE_LDFLAGS) -o $@ $^ -lgcc

$(B)/coord: $(COORD_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/unit/%: tests/unit/%.c $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka) -lxxhash

$(B)/tests/progs/%: tests/integration/progs/%.c tests/integration/progs/testlib.h \
		tests/integration/progs/unixtest.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -g -D_GNU_SOURCE -Wall -o $@ $< -lpthread -lrt -lm

# sock_tracked's routes are built from it (ROUTE set)
$(patsubst %,$(B)/tests/progs/sock_tracked_%,fork spawn vfork syscall getfd): \
		tests/integration/progs/sock_tracked.c
# the --pidns twins include their tree_ program
$(B)/tests/progs/pidns_orphans: tests/integration/progs/tree_orphans.c
$(B)/tests/progs/pidns_subreaper_session: tests/integration/progs/tree_subreaper_session.c

$(B)/examples/%: examples/c/%.c preload/ckshim.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -o $@ $< -lpthread

tests-build: all $(UNIT_BIN) $(PROG_BIN) $(EXAMPLE_C)

test: tests-build
	bash tests/run.sh

unit: tests-build
	bash tests/run.sh --unit

integration: tests-build
	bash tests/run.sh --integration

bench: all
	bash tests/bench.sh

demo:
	bash examples/demo.sh

deps:
	bash scripts/install-deps.sh

VERSION := $(shell sed -n 's/^\#define COORD_VERSION "\(.*\)"/\1/p' coordinator/coord.h)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/ckshim $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/share/pkgconfig $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man7 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(B)/coord $(DESTDIR)$(PREFIX)/bin/coord
	install -m 0644 $(B)/libshim.so $(DESTDIR)$(PREFIX)/lib/ckshim/libshim.so
	install -m 0755 $(B)/ckshim-restore $(DESTDIR)$(PREFIX)/lib/ckshim/ckshim-restore
	install -m 0644 preload/ckshim.h $(DESTDIR)$(PREFIX)/include/ckshim.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' man/ckshim.pc.in \
		>$(DESTDIR)$(PREFIX)/share/pkgconfig/ckshim.pc
	install -m 0644 man/coord.1 $(DESTDIR)$(PREFIX)/share/man/man1/coord.1
	install -m 0644 man/ckshim_register_hook.3 $(DESTDIR)$(PREFIX)/share/man/man3/ckshim_register_hook.3
	install -m 0644 man/ckshim.7 $(DESTDIR)$(PREFIX)/share/man/man7/ckshim.7
	install -m 0644 completion/coord.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/coord

# A Debian package (debian/, dpkg-buildpackage) built from a copy of the
# tracked sources in build/deb/; the .deb lands in build/.
deb:
	rm -rf $(B)/deb && mkdir -p $(B)/deb/ckshim-$(VERSION)
	git ls-files -z | xargs -0 tar cf - | tar xf - -C $(B)/deb/ckshim-$(VERSION)
	cd $(B)/deb/ckshim-$(VERSION) && dpkg-buildpackage -us -uc -b -j2 >../build.log 2>&1 || \
		{ tail -30 ../build.log; exit 1; }
	cp $(B)/deb/ckshim_$(VERSION)_*.deb $(B)/
	@ls $(B)/ckshim_$(VERSION)_*.deb

format:
	clang-format -i $(wildcard */*.c */*.h tests/*/*.c)

format-check:
	clang-format --dry-run --Werror $(wildcard */*.c */*.h tests/*/*.c)

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
