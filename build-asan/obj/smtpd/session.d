build-asan/obj/smtpd/session.o: smtpd/session.c common/addr.h \
 common/error.h common/error.h common/log.h common/wire.h \
 include/elemta/plugin.h common/strbuf.h smtpd/command.h smtpd/data.h \
 smtpd/session.h common/config.h smtpd/policy_client.h common/strbuf.h \
 smtpd/spool.h
common/addr.h:
common/error.h:
common/error.h:
common/log.h:
common/wire.h:
include/elemta/plugin.h:
common/strbuf.h:
smtpd/command.h:
smtpd/data.h:
smtpd/session.h:
common/config.h:
smtpd/policy_client.h:
common/strbuf.h:
smtpd/spool.h:
