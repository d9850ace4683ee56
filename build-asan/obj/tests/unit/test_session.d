build-asan/obj/tests/unit/test_session.o: tests/unit/test_session.c \
 common/config.h common/error.h common/wire.h include/elemta/plugin.h \
 common/strbuf.h tests/unit/../../smtpd/session.h \
 tests/unit/../../smtpd/policy_client.h common/strbuf.h \
 tests/unit/../../smtpd/spool.h common/error.h
common/config.h:
common/error.h:
common/wire.h:
include/elemta/plugin.h:
common/strbuf.h:
tests/unit/../../smtpd/session.h:
tests/unit/../../smtpd/policy_client.h:
common/strbuf.h:
tests/unit/../../smtpd/spool.h:
common/error.h:
