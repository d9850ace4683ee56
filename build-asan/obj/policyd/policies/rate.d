build-asan/obj/policyd/policies/rate.o: policyd/policies/rate.c \
 common/error.h policyd/policies/policy.h include/elemta/plugin.h \
 common/addr.h common/error.h
common/error.h:
policyd/policies/policy.h:
include/elemta/plugin.h:
common/addr.h:
common/error.h:
