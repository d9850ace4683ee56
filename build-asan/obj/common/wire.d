build-asan/obj/common/wire.o: common/wire.c common/log.h common/wire.h \
 include/elemta/plugin.h common/error.h common/strbuf.h
common/log.h:
common/wire.h:
include/elemta/plugin.h:
common/error.h:
common/strbuf.h:
