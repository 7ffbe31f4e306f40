milter_stub_SRCS = filter/milter.c policy/util.c policy/log.c policy/buf.c
