dmarc_fuzz_SRCS = policy/dmarc.c policy/psl.c policy/dns.c policy/txn.c policy/addr.c policy/buf.c policy/util.c policy/log.c
