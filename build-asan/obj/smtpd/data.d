build-asan/obj/smtpd/data.o: smtpd/data.c smtpd/data.h
smtpd/data.h:
