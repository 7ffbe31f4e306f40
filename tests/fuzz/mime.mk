mime_fuzz_SRCS = policy/mime.c policy/buf.c policy/util.c policy/log.c
