build-asan/obj/policyd/main.o: policyd/main.c common/config.h \
 common/error.h common/counter.h common/log.h policyd/plugin_host.h \
 include/elemta/plugin.h common/error.h common/wire.h common/strbuf.h \
 policyd/worker.h
common/config.h:
common/error.h:
common/counter.h:
common/log.h:
policyd/plugin_host.h:
include/elemta/plugin.h:
common/error.h:
common/wire.h:
common/strbuf.h:
policyd/worker.h:
