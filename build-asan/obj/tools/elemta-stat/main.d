build-asan/obj/tools/elemta-stat/main.o: tools/elemta-stat/main.c \
 common/config.h common/error.h common/counter.h common/log.h
common/config.h:
common/error.h:
common/counter.h:
common/log.h:
