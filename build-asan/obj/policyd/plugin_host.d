build-asan/obj/policyd/plugin_host.o: policyd/plugin_host.c \
 policyd/builtin.h include/elemta/plugin.h policyd/host_internal.h \
 common/addr.h common/error.h policyd/plugin_host.h common/config.h \
 common/counter.h common/error.h common/wire.h common/strbuf.h \
 common/log.h
policyd/builtin.h:
include/elemta/plugin.h:
policyd/host_internal.h:
common/addr.h:
common/error.h:
policyd/plugin_host.h:
common/config.h:
common/counter.h:
common/error.h:
common/wire.h:
common/strbuf.h:
common/log.h:
