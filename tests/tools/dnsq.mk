dnsq_SRCS = policy/dns.c policy/util.c policy/log.c
