build-asan/obj/tools/elemtactl/runtime.o: tools/elemtactl/runtime.c \
 tools/elemtactl/elemtactl.h common/config.h common/error.h \
 common/error.h common/strbuf.h
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
