build-asan/obj/smtpd/policy_client.o: smtpd/policy_client.c \
 common/error.h common/fdpass.h common/log.h smtpd/policy_client.h \
 common/strbuf.h common/wire.h include/elemta/plugin.h common/error.h \
 common/strbuf.h
common/error.h:
common/fdpass.h:
common/log.h:
smtpd/policy_client.h:
common/strbuf.h:
common/wire.h:
include/elemta/plugin.h:
common/error.h:
common/strbuf.h:
