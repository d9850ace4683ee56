# Elemta - top-level build.
#   make            all programs, the plugin SDK files and the example plugins
#                   (builds only: a missing dependency fails naming
#                   scripts/setup)
#   make run        the whole system in the foreground (config/elemta.yaml),
#                   after scripts/setup
#   make check      every test: unit (cmocka), integration (pytest), the same
#                   under ASan+UBSan, and 30 s per fuzz target, after
#                   scripts/setup --test
#   make check-fast unit and integration tests of the plain build only
#   make install    PREFIX=/usr/local DESTDIR=  (installs only; the system
#                   users are scripts/setup's, or the packager's);
#                   SENDMAIL_ALTERNATIVES=yes also makes elemta-sendmail
#                   the host's /usr/sbin/sendmail and /usr/bin/mailq
#                   (scripts/sendmail-links: refuses to replace another
#                   MTA's, and says what it would do)
.SUFFIXES:

PREFIX    ?= /usr/local
SBINDIR   ?= $(PREFIX)/sbin
LIBEXECDIR?= $(PREFIX)/libexec/elemta
INCLUDEDIR?= $(PREFIX)/include
LIBDIR    ?= $(PREFIX)/lib
SYSCONFDIR?= /etc/elemta
DESTDIR   ?=

B         := build
ifeq ($(origin CC),default)
CC        := cc
endif
# The pkg-config modules each program links, from what its code really
# calls (its own sources and the common/ objects they pull in from the
# archive): the internet-facing elemta-smtpd has no counter store
# (liblmdb, hiredis) and no MIME parser (GMime);
# tests/integration/test_link.py checks.  COMMON_PKGS: what the common/
# objects every program pulls in call (config.c: libyaml; domain.c: libidn2; a library that
# addr.c or config.c comes to call goes here); STORE_PKGS: the counter
# store's backends (counter_lmdb.c, counter_redis.c); DNS_PKGS: the
# resolver (dns.c: libunbound, its answers parsed by libldns), linked by
# elemta-queued and elemta-policyd only.
COMMON_PKGS   := yaml-0.1 libidn2
STORE_PKGS    := lmdb hiredis
DNS_PKGS      := libunbound ldns
SMTPD_PKGS    := $(COMMON_PKGS) libevent libevent_openssl openssl
POLICYD_PKGS  := $(COMMON_PKGS) $(STORE_PKGS) $(DNS_PKGS) libevent libcrypto gmime-3.0 libxcrypt
CTL_PKGS      := $(POLICYD_PKGS) json-c
STAT_PKGS     := $(COMMON_PKGS) $(STORE_PKGS) json-c
METRICSD_PKGS := $(COMMON_PKGS) $(STORE_PKGS) libmicrohttpd
QUEUED_PKGS   := $(COMMON_PKGS) $(DNS_PKGS) libevent libevent_openssl openssl
SENDMAIL_PKGS := $(COMMON_PKGS)
PKGS      := $(sort $(SMTPD_PKGS) $(POLICYD_PKGS) $(CTL_PKGS) $(STAT_PKGS) $(METRICSD_PKGS) $(QUEUED_PKGS))
pkg_libs   = $(shell pkg-config --libs $(1) 2>/dev/null)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wno-unused-parameter -Wvla
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(CFLAGS) -Iinclude -Icommon \
             -DLIBEXECDIR='"$(LIBEXECDIR)"' $(PKG_CFLAGS)
# Unit tests and fuzz targets link everything.
LDLIBS     = $(call pkg_libs,$(PKGS)) -ldl -lm

COMMON_SRC  := $(wildcard common/*.c)
SMTPD_SRC   := $(filter-out smtpd/main.c,$(wildcard smtpd/*.c))
POLICYD_SRC := $(filter-out policyd/main.c,$(wildcard policyd/*.c policyd/policies/*.c))
CTL_SRC     := $(filter-out tools/elemtactl/main.c,$(wildcard tools/elemtactl/*.c))
STAT_SRC    := $(wildcard tools/elemta-stat/*.c)
METRICSD_SRC := $(wildcard metricsd/*.c)
QUEUED_SRC  := $(filter-out queued/main.c,$(wildcard queued/*.c))
SENDMAIL_SRC := $(filter-out tools/elemta-sendmail/main.c,$(wildcard tools/elemta-sendmail/*.c))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
PLUGIN_SRC  := $(wildcard examples/plugins/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIB_COMMON  := $(B)/lib/libelemta-common.a
LIB_SMTPD   := $(B)/lib/libelemta-smtpd.a
LIB_POLICYD := $(B)/lib/libelemta-policyd.a
LIB_QUEUED  := $(B)/lib/libelemta-queued.a
LIB_CTL     := $(B)/lib/libelemta-ctl.a
LIB_SENDMAIL := $(B)/lib/libelemta-sendmail.a
BINS        := $(B)/bin/elemtactl $(B)/bin/elemta-smtpd $(B)/bin/elemta-policyd $(B)/bin/elemta-stat $(B)/bin/elemta-metricsd $(B)/bin/elemta-queued $(B)/bin/elemta-sendmail
UNIT_BINS   := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
PLUGINS     := $(patsubst examples/plugins/%.c,$(B)/plugins/%.so,$(PLUGIN_SRC))

all: $(BINS) $(PLUGINS) $(B)/elemta-plugin.pc man

# deps - runs before anything is compiled.  The goals that run Elemta or
# its tests first install what they need (scripts/setup: missing Debian
# packages, the system users when root), so `make run` and `make check`
# work as the very first command on a fresh machine.  Every other goal
# (`make`, `make install`, `make asan`...) has no step that could install
# anything: make itself asks scripts/setup --check, which installs
# nothing, and fails with its one line naming scripts/setup when a
# dependency is missing.  Well under a second when everything is present.
RUN_GOALS   := run
TEST_GOALS  := check check-fast unit integration check-asan bench-quick \
               fuzz fuzz-ci fuzz-regress
# Builds of the test programs check for the test packages too.
TEST_BUILDS := asan asan-inner fuzz-build $(B)/tests/%
ifneq ($(filter $(TEST_GOALS),$(MAKECMDGOALS)),)
DEPS_SETUP  := sh scripts/setup --test
else ifneq ($(filter $(RUN_GOALS),$(MAKECMDGOALS)),)
DEPS_SETUP  := sh scripts/setup
endif
DEPS_MISSING = $(shell sh scripts/setup --check \
               $(if $(filter $(TEST_BUILDS),$(MAKECMDGOALS)),--test) 2>&1)
deps:
	@$(or $(DEPS_SETUP),$(if $(DEPS_MISSING),echo 'make: $(DEPS_MISSING)' >&2; exit 1,:))

$(B)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB_COMMON): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIB_SMTPD): $(call obj,$(SMTPD_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIB_POLICYD): $(call obj,$(POLICYD_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIB_QUEUED): $(call obj,$(QUEUED_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIB_CTL): $(call obj,$(CTL_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIB_SENDMAIL): $(call obj,$(SENDMAIL_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/bin/elemta-smtpd: $(call obj,smtpd/main.c) $(LIB_SMTPD) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(call pkg_libs,$(SMTPD_PKGS))
# -rdynamic: loaded plugins resolve the host API (elemta_ctx_*, elemta_cfg_*)
# from the executable itself.
$(B)/bin/elemta-policyd: $(call obj,policyd/main.c) $(LIB_POLICYD) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -rdynamic -o $@ -Wl,--whole-archive $(LIB_POLICYD) -Wl,--no-whole-archive $(filter %.o,$^) $(LIB_COMMON) $(call pkg_libs,$(POLICYD_PKGS)) -ldl -lm
$(B)/bin/elemtactl: $(call obj,tools/elemtactl/main.c) $(LIB_CTL) $(LIB_POLICYD) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -rdynamic -o $@ $(filter %.o,$^) $(LIB_CTL) -Wl,--whole-archive $(LIB_POLICYD) -Wl,--no-whole-archive $(LIB_COMMON) $(call pkg_libs,$(CTL_PKGS)) -ldl -lm
$(B)/bin/elemta-stat: $(call obj,$(STAT_SRC)) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(call pkg_libs,$(STAT_PKGS)) -lm
$(B)/bin/elemta-metricsd: $(call obj,$(METRICSD_SRC)) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(call pkg_libs,$(METRICSD_PKGS)) -lm

$(B)/bin/elemta-queued: $(call obj,queued/main.c) $(LIB_QUEUED) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(call pkg_libs,$(QUEUED_PKGS))

# elemta-sendmail: run by any local user; the config file's loader and
# nothing else of the server (no libevent, no OpenSSL).
$(B)/bin/elemta-sendmail: $(call obj,tools/elemta-sendmail/main.c) $(LIB_SENDMAIL) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(call pkg_libs,$(SENDMAIL_PKGS))

$(B)/plugins/%.so: examples/plugins/%.c include/elemta/plugin.h | deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -shared -fPIC $(WARN) $(CFLAGS) -Iinclude -o $@ $<
	@chmod go-w $@

$(B)/tests/test_%: $(call obj,tests/unit/test_%.c) $(LIB_CTL) $(LIB_SMTPD) $(LIB_POLICYD) $(LIB_QUEUED) $(LIB_SENDMAIL) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -rdynamic -o $@ $(filter %.o,$^) $(LIB_CTL) $(LIB_SMTPD) $(LIB_POLICYD) $(LIB_QUEUED) $(LIB_SENDMAIL) $(LIB_COMMON) $(LDLIBS) $(shell pkg-config --libs cmocka)

# The test programs' objects are intermediate files of the rule above:
# keep them, so a rebuild compiles only what changed.
.SECONDARY:

# Rewritten whenever PREFIX or the version changes (cmp keeps the
# timestamp otherwise).  The version is common/version.h's, written once.
VERSION := $(shell sed -n 's/^\#define ELEMTA_VERSION "\(.*\)"/\1/p' common/version.h)
$(B)/elemta-plugin.pc: scripts/elemta-plugin.pc.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' $< > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

# ---- running ----
run: deps all
	sh scripts/dev-cert config
	$(B)/bin/elemtactl -c config/elemta.yaml start --foreground

# ---- tests ----
unit: deps $(UNIT_BINS)
	@sh tests/unit/run $(UNIT_BINS)

# Two tests at a time (pytest-xdist): most of a test's time is spent
# waiting on timers and peers, and every instance has its own ports and
# directories.  PYTEST_JOBS=0 runs them one by one.
PYTEST_JOBS ?= 2
PYTEST := /usr/bin/python3 -m pytest -q -p no:cacheprovider -n $(PYTEST_JOBS)
export PYTEST_JOBS

integration: deps all
	$(PYTEST) tests/integration

# Everything CI runs (issue 9): the plain build's unit and integration
# tests, the same under ASan+UBSan, the fuzz corpora replayed and each fuzz
# target for 30 s.  `make check-fast` is the first half alone.
check: check-fast check-asan fuzz-ci bench-quick

# The benchmark's smallest configuration, so it cannot rot (figures:
# docs/performance.md).
bench-quick: deps all
	/usr/bin/python3 scripts/bench --quick --no-build

check-fast: all unit integration

install: all install-man install-unit
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(INCLUDEDIR)/elemta \
	    $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(SYSCONFDIR)
	install -m 755 $(B)/bin/elemtactl $(B)/bin/elemta-stat $(B)/bin/elemta-sendmail $(DESTDIR)$(SBINDIR)/
	install -m 755 $(B)/bin/elemta-smtpd $(B)/bin/elemta-policyd $(B)/bin/elemta-metricsd $(B)/bin/elemta-queued $(DESTDIR)$(LIBEXECDIR)/
	install -m 644 include/elemta/plugin.h $(DESTDIR)$(INCLUDEDIR)/elemta/
	install -m 644 $(B)/elemta-plugin.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	[ -e $(DESTDIR)$(SYSCONFDIR)/elemta.yaml ] || install -m 644 config/elemta.yaml.dist $(DESTDIR)$(SYSCONFDIR)/elemta.yaml
ifeq ($(SENDMAIL_ALTERNATIVES),yes)
	sh scripts/sendmail-links "$(DESTDIR)" "$(SBINDIR)/elemta-sendmail"
endif

clean:
	rm -rf $(B)

.PHONY: all deps run unit integration check check-fast bench-quick install clean FORCE

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
include mk/sanitize.mk mk/fuzz.mk mk/docs.mk
