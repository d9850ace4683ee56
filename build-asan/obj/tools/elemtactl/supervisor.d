build-asan/obj/tools/elemtactl/supervisor.o: tools/elemtactl/supervisor.c \
 common/counter.h common/error.h tools/elemtactl/elemtactl.h \
 common/config.h common/error.h common/strbuf.h common/log.h
common/counter.h:
common/error.h:
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/strbuf.h:
common/log.h:
