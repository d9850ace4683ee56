build-asan/obj/tools/elemtactl/control.o: tools/elemtactl/control.c \
 tools/elemtactl/elemtactl.h common/config.h common/error.h \
 common/error.h common/strbuf.h
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
