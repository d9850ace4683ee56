build-asan/obj/common/counter.o: common/counter.c common/counter.h \
 common/error.h common/log.h
common/counter.h:
common/error.h:
common/log.h:
