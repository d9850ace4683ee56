# mk/fuzz.mk - libFuzzer targets (issue 9, "Fuzzing").  Included at the
# end of the Makefile.
#
#   make fuzz-build               build-fuzz/bin/fuzz_<target>
#   make fuzz [FUZZ_SECONDS=60]   build, then run each target that long
#   make fuzz-ci                  build, then run each target 30 seconds
#   make fuzz-regress             build, then run each target once over its
#                                 seed corpus only (every kept reproducer)
#
# Targets are tests/fuzz/fuzz_<name>.c; seeds in tests/fuzz/corpus/<name>/
# (reproducers of found bugs stay there, named crash-*), a dictionary in
# tests/fuzz/<name>.dict; inputs libFuzzer finds go to
# build-fuzz/corpus/<name>/, crashes to build-fuzz/artifacts/<name>/.
# scripts/fuzz runs them and summarises (scripts/fuzz -k TARGET keeps
# going after a crash, to collect every distinct finding).  The modules
# under test are compiled again with clang and the fuzzer's coverage
# instrumentation (same sources, same ALL_CFLAGS); this needs clang and
# its runtime (Debian: clang, libclang-rt-14-dev).

FUZZ_B        := build-fuzz
FUZZ_CC       ?= clang
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 -fno-omit-frame-pointer
# -Wno-format-nonliteral: clang (unlike gcc) flags the vsnprintf in
# strbuf_vappendf, whose prototype in common/strbuf.h lacks
# __attribute__((format(printf, 2, 0))); drop this once the header has it.
FUZZ_CFLAGS    = $(ALL_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -g \
                 -Wno-format-nonliteral
FUZZ_SECONDS  ?= 60
FUZZ_CI_SECONDS := 30

# Each target: the sources it needs beyond common/ (linked from an
# archive, so only what is used comes in).  Targets over other programs'
# modules are built only once those modules exist.
FUZZ_TARGETS  := wire config addr queue_state milter
FUZZ_SRC_wire   :=
# The milter reply decoder and the message edit list (common/ only).
FUZZ_SRC_milter :=
# The queue's state files and spool envelopes (common/ only).
FUZZ_SRC_queue_state :=
# config also runs the built-in plugins' init on their subtrees: policyd's
# plugin host (the elemta_cfg_* accessors) and policies.
FUZZ_SRC_config := $(POLICYD_SRC)
FUZZ_SRC_addr   :=
ifneq ($(wildcard smtpd/command.c),)
FUZZ_TARGETS  += command mailbox
FUZZ_SRC_command := smtpd/command.c
FUZZ_SRC_mailbox := smtpd/command.c
endif
ifneq ($(wildcard smtpd/data.c),)
FUZZ_TARGETS  += data
FUZZ_SRC_data := smtpd/data.c
endif
ifneq ($(wildcard queued/reply.c),)
FUZZ_TARGETS  += reply
FUZZ_SRC_reply := queued/reply.c queued/outcome.c
endif
# elemta-sendmail's reading of a local program's message (-t, Bcc, the
# added headers).
ifneq ($(wildcard tools/elemta-sendmail/message.c),)
FUZZ_TARGETS  += sendmail
FUZZ_SRC_sendmail := tools/elemta-sendmail/message.c
endif
ifneq ($(wildcard policyd/policies/spf_eval.c),)
FUZZ_TARGETS  += spf
FUZZ_SRC_spf  := policyd/policies/spf_eval.c
endif
ifneq ($(wildcard policyd/policies/content_scan.c),)
FUZZ_TARGETS  += mime
FUZZ_SRC_mime := policyd/policies/content_scan.c
endif
ifneq ($(wildcard policyd/policies/dnsbl_site.c),)
FUZZ_TARGETS  += dnsbl
FUZZ_SRC_dnsbl := policyd/policies/dnsbl_site.c
endif

fuzz_obj = $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(1))
FUZZ_LIB      := $(FUZZ_B)/lib/libelemta-common.a
FUZZ_BINS     := $(patsubst %,$(FUZZ_B)/bin/fuzz_%,$(FUZZ_TARGETS))

$(FUZZ_B)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(call fuzz_obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# fuzz_link_rule - build-fuzz/bin/fuzz_<t> from its harness, its module
# sources and the instrumented common library.
define fuzz_link_rule
$(FUZZ_B)/bin/fuzz_$(1): $(call fuzz_obj,tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1))) $(FUZZ_LIB)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_SAN) -fsanitize=fuzzer -o $$@ $$(filter %.o,$$^) $$(FUZZ_LIB) $$(LDLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_link_rule,$(t))))

# fuzz-cc - a clear message instead of a link error when clang or its
# libFuzzer runtime is missing.
fuzz-cc: deps
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return (int)(d[0] & n & 0); }\n' | \
	    $(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null || { \
	    echo "make fuzz: '$(FUZZ_CC) -fsanitize=fuzzer' cannot link; install clang and its runtime (scripts/setup --test; Debian: clang libclang-rt-14-dev)" >&2; \
	    exit 1; }

fuzz-build: fuzz-cc $(FUZZ_BINS)

fuzz: fuzz-build
	sh scripts/fuzz -b $(FUZZ_B) -t $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-ci: fuzz-build
	sh scripts/fuzz -b $(FUZZ_B) -t $(FUZZ_CI_SECONDS) $(FUZZ_TARGETS)

fuzz-regress: fuzz-build
	sh scripts/fuzz -b $(FUZZ_B) -r $(FUZZ_TARGETS)

clean-fuzz:
	rm -rf $(FUZZ_B)

clean: clean-fuzz

.PHONY: fuzz-cc fuzz-build fuzz fuzz-ci fuzz-regress clean-fuzz

-include $(shell find $(FUZZ_B)/obj -name '*.d' 2>/dev/null)
