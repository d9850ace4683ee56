build-asan/obj/policyd/policies/client.o: policyd/policies/client.c \
 common/error.h policyd/policies/policy.h include/elemta/plugin.h \
 common/addr.h common/error.h
common/error.h:
policyd/policies/policy.h:
include/elemta/plugin.h:
common/addr.h:
common/error.h:
