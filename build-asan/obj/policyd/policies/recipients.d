build-asan/obj/policyd/policies/recipients.o: \
 policyd/policies/recipients.c common/error.h policyd/policies/policy.h \
 include/elemta/plugin.h common/addr.h common/error.h
common/error.h:
policyd/policies/policy.h:
include/elemta/plugin.h:
common/addr.h:
common/error.h:
