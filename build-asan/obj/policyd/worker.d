build-asan/obj/policyd/worker.o: policyd/worker.c common/fdpass.h \
 common/log.h common/strbuf.h common/wire.h include/elemta/plugin.h \
 common/error.h common/strbuf.h policyd/worker.h common/counter.h \
 common/error.h policyd/plugin_host.h common/config.h
common/fdpass.h:
common/log.h:
common/strbuf.h:
common/wire.h:
include/elemta/plugin.h:
common/error.h:
common/strbuf.h:
policyd/worker.h:
common/counter.h:
common/error.h:
policyd/plugin_host.h:
common/config.h:
