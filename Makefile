# Elemta - top-level build.
#   make            all programs, the plugin SDK files and the example plugins
#   make run        the whole system in the foreground (config/elemta.yaml)
#   make check      every test: unit (cmocka), integration (pytest), the same
#                   under ASan+UBSan, and 30 s per fuzz target
#   make check-fast unit and integration tests of the plain build only
#   make install    PREFIX=/usr/local DESTDIR=
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
PKGS      := yaml-0.1 lmdb libevent libevent_openssl openssl gmime-3.0 json-c libmicrohttpd libxcrypt hiredis
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wno-unused-parameter -Wvla
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(CFLAGS) -Iinclude -Icommon \
             -DLIBEXECDIR='"$(LIBEXECDIR)"' $(PKG_CFLAGS)
LDLIBS     = $(PKG_LIBS) -ldl -lm

COMMON_SRC  := $(wildcard common/*.c)
SMTPD_SRC   := $(filter-out smtpd/main.c,$(wildcard smtpd/*.c))
POLICYD_SRC := $(filter-out policyd/main.c,$(wildcard policyd/*.c policyd/policies/*.c))
CTL_SRC     := $(wildcard tools/elemtactl/*.c)
STAT_SRC    := $(wildcard tools/elemta-stat/*.c)
METRICSD_SRC := $(wildcard tools/elemta-metricsd/*.c)
QUEUED_SRC  := $(wildcard queued/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
PLUGIN_SRC  := $(wildcard examples/plugins/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIB_COMMON  := $(B)/lib/libelemta-common.a
LIB_SMTPD   := $(B)/lib/libelemta-smtpd.a
LIB_POLICYD := $(B)/lib/libelemta-policyd.a
LIB_QUEUED  := $(B)/lib/libelemta-queued.a
BINS        := $(B)/bin/elemtactl $(B)/bin/elemta-smtpd $(B)/bin/elemta-policyd $(B)/bin/elemta-stat $(B)/bin/elemta-metricsd
UNIT_BINS   := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
PLUGINS     := $(patsubst examples/plugins/%.c,$(B)/plugins/%.so,$(PLUGIN_SRC))

all: setup-quiet $(BINS) $(LIB_QUEUED) $(PLUGINS) $(B)/elemta-plugin.pc man

# Installs missing Debian packages first, so `make run`/`make check` work as
# the very first command on a fresh machine; a no-op (well under a second)
# when everything is present.
setup-quiet:
	@sh scripts/setup

$(B)/obj/%.o: %.c
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

$(B)/bin/elemta-smtpd: $(call obj,smtpd/main.c) $(LIB_SMTPD) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS)
# -rdynamic: loaded plugins resolve the host API (elemta_ctx_*, elemta_cfg_*)
# from the executable itself.
$(B)/bin/elemta-policyd: $(call obj,policyd/main.c) $(LIB_POLICYD) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -rdynamic -o $@ -Wl,--whole-archive $(LIB_POLICYD) -Wl,--no-whole-archive $(filter %.o,$^) $(LIB_COMMON) $(LDLIBS)
$(B)/bin/elemtactl: $(call obj,$(CTL_SRC)) $(LIB_POLICYD) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -rdynamic -o $@ $(filter %.o,$^) -Wl,--whole-archive $(LIB_POLICYD) -Wl,--no-whole-archive $(LIB_COMMON) $(LDLIBS)
$(B)/bin/elemta-stat: $(call obj,$(STAT_SRC)) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS)
$(B)/bin/elemta-metricsd: $(call obj,$(METRICSD_SRC)) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS)

$(B)/plugins/%.so: examples/plugins/%.c include/elemta/plugin.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -shared -fPIC $(WARN) $(CFLAGS) -Iinclude -o $@ $<
	@chmod go-w $@

$(B)/tests/test_%: $(call obj,tests/unit/test_%.c) $(LIB_SMTPD) $(LIB_POLICYD) $(LIB_QUEUED) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -rdynamic -o $@ $(filter %.o,$^) $(LIB_SMTPD) $(LIB_POLICYD) $(LIB_QUEUED) $(LIB_COMMON) $(LDLIBS) $(shell pkg-config --libs cmocka)

# Rewritten whenever PREFIX changes (cmp keeps the timestamp otherwise).
$(B)/elemta-plugin.pc: scripts/elemta-plugin.pc.in FORCE
	@mkdir -p $(dir $@)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' $< > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

# ---- running ----
run: all
	sh scripts/dev-cert config
	$(B)/bin/elemtactl -c config/elemta.yaml start --foreground

# ---- tests ----
unit: setup-quiet $(UNIT_BINS)
	@sh tests/unit/run $(UNIT_BINS)

integration: all
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

# Everything CI runs (issue 9): the plain build's unit and integration
# tests, the same under ASan+UBSan, the fuzz corpora replayed and each fuzz
# target for 30 s.  `make check-fast` is the first half alone.
check: check-fast check-asan fuzz-ci bench-quick

# The benchmark's smallest configuration, so it cannot rot (figures: README).
bench-quick: all
	/usr/bin/python3 scripts/bench --quick --no-build

check-fast: all unit integration

install: all install-man install-unit
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(INCLUDEDIR)/elemta \
	    $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(SYSCONFDIR)
	install -m 755 $(B)/bin/elemtactl $(B)/bin/elemta-stat $(DESTDIR)$(SBINDIR)/
	install -m 755 $(B)/bin/elemta-smtpd $(B)/bin/elemta-policyd $(B)/bin/elemta-metricsd $(DESTDIR)$(LIBEXECDIR)/
	install -m 644 include/elemta/plugin.h $(DESTDIR)$(INCLUDEDIR)/elemta/
	install -m 644 $(B)/elemta-plugin.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	[ -e $(DESTDIR)$(SYSCONFDIR)/elemta.yaml ] || install -m 644 config/elemta.yaml.dist $(DESTDIR)$(SYSCONFDIR)/elemta.yaml

clean:
	rm -rf $(B)

.PHONY: all setup-quiet run unit integration check check-fast bench-quick install clean FORCE

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
include mk/sanitize.mk mk/fuzz.mk mk/docs.mk
