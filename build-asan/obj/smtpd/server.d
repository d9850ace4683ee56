build-asan/obj/smtpd/server.o: smtpd/server.c common/addr.h \
 common/error.h common/error.h common/log.h smtpd/policy_client.h \
 common/strbuf.h common/wire.h include/elemta/plugin.h common/strbuf.h \
 smtpd/server.h common/config.h smtpd/session.h
common/addr.h:
common/error.h:
common/error.h:
common/log.h:
smtpd/policy_client.h:
common/strbuf.h:
common/wire.h:
include/elemta/plugin.h:
common/strbuf.h:
smtpd/server.h:
common/config.h:
smtpd/session.h:
