# mk/sanitize.mk - the AddressSanitizer + UndefinedBehaviorSanitizer build
# variant (issue 9, "Sanitizers").  Included at the end of the Makefile.
#
#   make asan         every program, unit test and plugin, same sources,
#                     built into build-asan/ with the sanitizers
#   make check-asan   the unit tests, then the integration tests run
#                     against build-asan/bin (ELEMTA_BIN_DIR)
#
# The variant is the normal build run again by a sub-make with B, CC and
# CFLAGS overridden, so it can never drift from the real rules: the
# sanitizer flags ride on CC because the link rules have no LDFLAGS, and
# the plugin rule compiles with $(CC) too.  Reports make a test fail:
# unit tests abort on the first one (halt_on_error, exit status != 0);
# daemons write them to stderr, which is the integration instance's log
# file, and the harness fails a test whose log holds "AddressSanitizer" or
# "runtime error:".

ASAN_B       := build-asan
ASAN_CC      ?= $(CC)
ASAN_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined
ASAN_CFLAGS  ?= -O1 -g

# Unit tests stop at the first report.  LeakSanitizer (detect_leaks=1)
# works here, in the daemons too, after their privilege drop: a leak a
# worker leaves at exit is reported in the instance log.
ASAN_UNIT_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Daemons: the same.  ASAN_DAEMON_LEAKS=0 turns LeakSanitizer off for the
# daemons only (for a sandbox where it cannot stop the world).  elemtactl
# passes *SAN_OPTIONS through to its workers (tools/elemtactl/spawn.c).
ASAN_DAEMON_LEAKS ?= 1
ASAN_DAEMON_ENV := ASAN_OPTIONS=detect_leaks=$(ASAN_DAEMON_LEAKS):abort_on_error=0:halt_on_error=1 \
                   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# -f: the sub-make reads the same top-level makefile as this one.
ASAN_MAKE = $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) \
             B=$(ASAN_B) \
             CC="$(ASAN_CC) $(ASAN_SAN)" CFLAGS="$(ASAN_CFLAGS)"

ASAN_UNIT_BINS := $(patsubst tests/unit/%.c,$(ASAN_B)/tests/%,$(UNIT_SRC))

# deps first: under `make check-asan` it installs the test packages
# before the sub-make compiles anything.
asan: deps
	@+$(ASAN_MAKE) asan-inner

# asan-inner - what the variant holds; only meaningful inside the sub-make
# (B=build-asan), where $(UNIT_BINS) names the sanitized test programs.
asan-inner: all $(UNIT_BINS)

check-asan: asan
	$(ASAN_UNIT_ENV) sh tests/unit/run $(ASAN_UNIT_BINS)
	$(ASAN_DAEMON_ENV) ELEMTA_BIN_DIR=$(CURDIR)/$(ASAN_B)/bin \
	    $(PYTEST) tests/integration

clean-asan:
	rm -rf $(ASAN_B)

clean: clean-asan

.PHONY: asan asan-inner check-asan clean-asan
