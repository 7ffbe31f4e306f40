authres_fuzz_SRCS = policy/authres.c policy/txn.c policy/addr.c policy/buf.c policy/util.c policy/log.c
