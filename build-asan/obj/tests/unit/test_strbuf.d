build-asan/obj/tests/unit/test_strbuf.o: tests/unit/test_strbuf.c \
 common/strbuf.h
common/strbuf.h:
