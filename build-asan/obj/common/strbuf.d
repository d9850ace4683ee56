build-asan/obj/common/strbuf.o: common/strbuf.c common/error.h \
 common/strbuf.h
common/error.h:
common/strbuf.h:
