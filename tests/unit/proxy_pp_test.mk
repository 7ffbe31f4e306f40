proxy_pp_test_SRCS = filter/proxy_pp.c policy/util.c policy/log.c
