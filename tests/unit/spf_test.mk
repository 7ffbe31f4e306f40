spf_test_SRCS = policy/spf.c policy/spf_record.c policy/helo.c policy/iprev.c policy/dns.c policy/util.c policy/log.c
