proxy_pp_fuzz_SRCS = filter/proxy_pp.c policy/util.c policy/log.c
