config_fuzz_SRCS = filter/config.c policy/buf.c policy/util.c policy/log.c
