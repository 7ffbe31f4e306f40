meta_fuzz_SRCS = policy/meta.c policy/util.c policy/log.c
