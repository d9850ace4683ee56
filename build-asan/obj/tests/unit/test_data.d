build-asan/obj/tests/unit/test_data.o: tests/unit/test_data.c \
 tests/unit/../../smtpd/data.h
tests/unit/../../smtpd/data.h:
