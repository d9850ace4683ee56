build-asan/obj/tests/unit/test_wire.o: tests/unit/test_wire.c \
 common/wire.h include/elemta/plugin.h common/error.h common/strbuf.h
common/wire.h:
include/elemta/plugin.h:
common/error.h:
common/strbuf.h:
