proxy_verb_test_SRCS = filter/proxy_verb.c policy/util.c policy/log.c
