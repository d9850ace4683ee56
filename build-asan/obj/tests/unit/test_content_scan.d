build-asan/obj/tests/unit/test_content_scan.o: \
 tests/unit/test_content_scan.c \
 tests/unit/../../policyd/policies/content_scan.h common/error.h
tests/unit/../../policyd/policies/content_scan.h:
common/error.h:
