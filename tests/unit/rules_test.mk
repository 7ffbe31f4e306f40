rules_test_SRCS = policy/rules.c policy/buf.c policy/util.c policy/log.c
