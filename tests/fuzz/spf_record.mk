spf_record_fuzz_SRCS = policy/spf_record.c policy/util.c policy/log.c
