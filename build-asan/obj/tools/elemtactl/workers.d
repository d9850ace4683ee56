build-asan/obj/tools/elemtactl/workers.o: tools/elemtactl/workers.c \
 tools/elemtactl/elemtactl.h common/config.h common/error.h \
 common/error.h common/strbuf.h common/log.h
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
common/log.h:
