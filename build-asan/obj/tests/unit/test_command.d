build-asan/obj/tests/unit/test_command.o: tests/unit/test_command.c \
 tests/unit/../../smtpd/command.h
tests/unit/../../smtpd/command.h:
