store_test_SRCS = db/store.c policy/buf.c policy/util.c policy/log.c
