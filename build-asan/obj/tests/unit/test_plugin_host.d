build-asan/obj/tests/unit/test_plugin_host.o: \
 tests/unit/test_plugin_host.c common/config.h common/error.h \
 common/counter.h common/log.h tests/unit/../../policyd/plugin_host.h \
 include/elemta/plugin.h common/error.h common/wire.h common/strbuf.h
common/config.h:
common/error.h:
common/counter.h:
common/log.h:
tests/unit/../../policyd/plugin_host.h:
include/elemta/plugin.h:
common/error.h:
common/wire.h:
common/strbuf.h:
