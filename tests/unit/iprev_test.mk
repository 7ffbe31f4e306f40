iprev_test_SRCS = policy/iprev.c policy/dns.c policy/util.c policy/log.c policy/txn.c policy/addr.c
