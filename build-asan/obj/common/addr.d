build-asan/obj/common/addr.o: common/addr.c common/addr.h common/error.h \
 common/log.h
common/addr.h:
common/error.h:
common/log.h:
