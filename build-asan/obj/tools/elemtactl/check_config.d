build-asan/obj/tools/elemtactl/check_config.o: \
 tools/elemtactl/check_config.c tools/elemtactl/elemtactl.h \
 common/config.h common/error.h common/error.h common/strbuf.h
tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
