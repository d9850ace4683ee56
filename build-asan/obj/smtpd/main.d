build-asan/obj/smtpd/main.o: smtpd/main.c common/config.h common/error.h \
 common/error.h common/log.h smtpd/server.h smtpd/spool.h
common/config.h:
common/error.h:
common/error.h:
common/log.h:
smtpd/server.h:
smtpd/spool.h:
