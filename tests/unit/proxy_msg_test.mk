proxy_msg_test_SRCS = filter/proxy_msg.c filter/proxy_spool.c filter/proxy_io.c policy/buf.c policy/util.c policy/log.c
