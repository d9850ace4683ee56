build-asan/obj/smtpd/spool.o: smtpd/spool.c common/error.h common/log.h \
 smtpd/spool.h
common/error.h:
common/log.h:
smtpd/spool.h:
