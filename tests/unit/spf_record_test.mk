spf_record_test_SRCS = policy/spf_record.c policy/util.c policy/log.c
