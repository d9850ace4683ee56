build-asan/obj/policyd/policies/reputation.o: \
 policyd/policies/reputation.c policyd/policies/../plugin_proposed.h \
 include/elemta/plugin.h common/error.h policyd/policies/policy.h \
 common/addr.h common/error.h
policyd/policies/../plugin_proposed.h:
include/elemta/plugin.h:
common/error.h:
policyd/policies/policy.h:
common/addr.h:
common/error.h:
