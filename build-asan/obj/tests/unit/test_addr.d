build-asan/obj/tests/unit/test_addr.o: tests/unit/test_addr.c \
 common/addr.h common/error.h
common/addr.h:
common/error.h:
