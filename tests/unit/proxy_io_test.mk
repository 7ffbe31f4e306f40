proxy_io_test_SRCS = filter/proxy_io.c policy/buf.c policy/util.c policy/log.c
