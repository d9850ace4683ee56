build-asan/obj/policyd/builtin.o: policyd/builtin.c policyd/builtin.h \
 include/elemta/plugin.h policyd/policies/policy.h common/addr.h \
 common/error.h
policyd/builtin.h:
include/elemta/plugin.h:
policyd/policies/policy.h:
common/addr.h:
common/error.h:
