build-asan/obj/tests/unit/test_supervisor.o: tests/unit/test_supervisor.c \
 tests/unit/../../tools/elemtactl/args.c \
 tests/unit/../../tools/elemtactl/elemtactl.h common/config.h \
 common/error.h common/error.h common/strbuf.h \
 tests/unit/../../tools/elemtactl/dirs.c \
 tests/unit/../../tools/elemtactl/privs.c \
 tests/unit/../../tools/elemtactl/runtime.c \
 tests/unit/../../tools/elemtactl/sockets.c \
 tests/unit/../../tools/elemtactl/workers.c common/log.h
tests/unit/../../tools/elemtactl/args.c:
tests/unit/../../tools/elemtactl/elemtactl.h:
common/config.h:
common/error.h:
common/error.h:
common/strbuf.h:
tests/unit/../../tools/elemtactl/dirs.c:
tests/unit/../../tools/elemtactl/privs.c:
tests/unit/../../tools/elemtactl/runtime.c:
tests/unit/../../tools/elemtactl/sockets.c:
tests/unit/../../tools/elemtactl/workers.c:
common/log.h:
