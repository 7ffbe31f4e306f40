dns_cache_test_SRCS = policy/dns.c policy/util.c policy/log.c
