dkim_keycache_test_SRCS = policy/dkim_keycache.c policy/util.c policy/log.c
