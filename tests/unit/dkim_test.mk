dkim_test_SRCS = policy/dkim.c policy/dkim_keycache.c policy/dns.c policy/txn.c policy/addr.c policy/buf.c policy/util.c policy/log.c
