proxy_io_fuzz_SRCS = filter/proxy_io.c policy/buf.c policy/util.c policy/log.c
