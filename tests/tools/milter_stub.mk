milter_stub_SRCS = filter/milter.c policy/txn.c policy/addr.c policy/util.c policy/log.c policy/buf.c
