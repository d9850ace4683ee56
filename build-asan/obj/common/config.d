build-asan/obj/common/config.o: common/config.c common/config.h \
 common/error.h common/log.h
common/config.h:
common/error.h:
common/log.h:
