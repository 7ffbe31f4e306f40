proxy_verb_fuzz_SRCS = filter/proxy_verb.c policy/util.c policy/log.c
