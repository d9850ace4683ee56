build-asan/obj/policyd/policies/sender.o: policyd/policies/sender.c \
 common/error.h policyd/policies/policy.h include/elemta/plugin.h \
 common/addr.h common/error.h
common/error.h:
policyd/policies/policy.h:
include/elemta/plugin.h:
common/addr.h:
common/error.h:
