build-asan/obj/tools/elemtactl/dirs.o: tools/elemtactl/dirs.c \
 tools/elemtactl/elemtactl.h common/config.h common/error.h \
 common/error.h common/strbuf.h
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
