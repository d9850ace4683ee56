build-asan/obj/policyd/policies/policy.o: policyd/policies/policy.c \
 common/error.h policyd/policies/policy.h include/elemta/plugin.h \
 common/addr.h common/error.h
common/error.h:
policyd/policies/policy.h:
include/elemta/plugin.h:
common/addr.h:
common/error.h:
