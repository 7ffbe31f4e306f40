rules_fuzz_SRCS = policy/rules.c policy/rules_eval.c policy/rules_lint.c policy/meta.c policy/mime.c policy/dnsbl.c policy/dns.c policy/txn.c policy/addr.c policy/buf.c policy/util.c policy/log.c
