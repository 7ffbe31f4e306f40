proxy_bepool_test_SRCS = filter/proxy_bepool.c filter/proxy_backend.c filter/proxy_io.c policy/buf.c policy/util.c policy/log.c
