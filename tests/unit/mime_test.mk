mime_test_SRCS = policy/mime.c policy/meta.c policy/buf.c policy/util.c policy/log.c
