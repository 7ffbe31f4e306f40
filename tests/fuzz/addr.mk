addr_fuzz_SRCS = policy/addr.c policy/util.c policy/log.c
