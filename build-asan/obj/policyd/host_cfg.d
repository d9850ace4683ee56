build-asan/obj/policyd/host_cfg.o: policyd/host_cfg.c \
 policyd/host_internal.h common/addr.h common/error.h \
 policyd/plugin_host.h include/elemta/plugin.h common/config.h \
 common/counter.h common/error.h common/wire.h common/strbuf.h \
 common/log.h policyd/plugin_proposed.h
policyd/host_internal.h:
common/addr.h:
common/error.h:
policyd/plugin_host.h:
include/elemta/plugin.h:
common/config.h:
common/counter.h:
common/error.h:
common/wire.h:
common/strbuf.h:
common/log.h:
policyd/plugin_proposed.h:
