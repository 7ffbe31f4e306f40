txn_test_SRCS = policy/txn.c policy/addr.c policy/util.c policy/log.c
