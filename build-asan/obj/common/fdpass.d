build-asan/obj/common/fdpass.o: common/fdpass.c common/fdpass.h
common/fdpass.h:
