build-asan/obj/tools/elemtactl/spawn.o: tools/elemtactl/spawn.c \
 tools/elemtactl/elemtactl.h common/config.h common/error.h \
 common/error.h common/strbuf.h
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
