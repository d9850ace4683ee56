build-asan/obj/common/error.o: common/error.c common/error.h common/log.h
common/error.h:
common/log.h:
