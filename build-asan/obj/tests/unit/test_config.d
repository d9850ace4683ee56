build-asan/obj/tests/unit/test_config.o: tests/unit/test_config.c \
 common/config.h common/error.h
common/config.h:
common/error.h:
