build-asan/obj/tests/unit/test_counter.o: tests/unit/test_counter.c \
 common/counter.h common/error.h common/error.h common/log.h
common/counter.h:
common/error.h:
common/error.h:
common/log.h:
