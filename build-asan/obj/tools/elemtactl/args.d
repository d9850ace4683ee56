build-asan/obj/tools/elemtactl/args.o: tools/elemtactl/args.c \
 tools/elemtactl/elemtactl.h common/config.h common/error.h \
 common/error.h common/strbuf.h
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
