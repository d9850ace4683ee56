build-asan/obj/tests/unit/test_policy_rules.o: \
 tests/unit/test_policy_rules.c common/config.h common/error.h \
 common/counter.h common/log.h tests/unit/../../policyd/plugin_host.h \
 include/elemta/plugin.h common/error.h common/wire.h common/strbuf.h \
 tests/unit/../../policyd/policies/policy.h common/addr.h
common/config.h:
common/error.h:
common/counter.h:
common/log.h:
tests/unit/../../policyd/plugin_host.h:
include/elemta/plugin.h:
common/error.h:
common/wire.h:
common/strbuf.h:
tests/unit/../../policyd/policies/policy.h:
common/addr.h:
