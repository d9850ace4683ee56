build-asan/obj/smtpd/command.o: smtpd/command.c common/error.h \
 smtpd/command.h
common/error.h:
smtpd/command.h:
