/*
 * state_test.c - unit tests of policy/state.c's store lookups: which
 * block entry decides (an entry equal to the address before any CIDR,
 * else the first CIDR containing it), expiry, and the whitelist forms
 * (IP, CIDR, address, @domain). A database in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "state.h"
#include "store.h"
#include "txn.h"
#include "util.h"

struct fx {
	char		 dir[64];
	char		 db[128];
	struct store	*s;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char err[512];

	log_init("state_test", 1, LOG_LVL_ERR);
	str_copy(f->dir, "/tmp/mxw-state-XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	str_fmt(f->db, sizeof(f->db), "%s/state.db", f->dir);
	f->s = store_open(f->db, err, sizeof(err));
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	store_close(f->s);
	for (const char *sfx = ""; sfx != NULL;
	    sfx = *sfx == '\0' ? "-wal" : strcmp(sfx, "-wal") == 0 ? "-shm" : NULL) {
		str_fmt(p, sizeof(p), "%s%s", f->db, sfx);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_blocked(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	time_t now = 1000000;
	char why[64];

	assert_int_equal(state_blocked(s, "192.0.2.5", now, why, sizeof(why)), 0);
	/* a CIDR that sorts before the address itself */
	assert_int_equal(store_set(s, "block", "192.0.2.0/24", "net", now, 0), 0);
	assert_int_equal(store_set(s, "block", "192.0.2.0/28", "small", now, 0), 0);
	str_copy(why, "-", sizeof(why));
	assert_int_equal(state_blocked(s, "192.0.2.5", now, why, sizeof(why)), 1);
	assert_string_equal(why, "net");	/* the first CIDR in key order */
	assert_int_equal(store_set(s, "block", "192.0.2.5", "harvest", now,
	    now + 60), 0);
	assert_int_equal(state_blocked(s, "192.0.2.5", now, why, sizeof(why)), 1);
	assert_string_equal(why, "harvest");	/* the address itself decides */
	/* reason may be NULL */
	assert_int_equal(state_blocked(s, "192.0.2.5", now, NULL, 0), 1);
	/* expired: the CIDRs decide again */
	assert_int_equal(state_blocked(s, "192.0.2.5", now + 60, why,
	    sizeof(why)), 1);
	assert_string_equal(why, "net");
	/* outside every entry */
	assert_int_equal(state_blocked(s, "198.51.100.1", now, why, sizeof(why)), 0);
	/* entries of another kind do not block */
	assert_int_equal(store_set(s, "whitelist", "198.51.100.1", "x", now, 0), 0);
	assert_int_equal(state_blocked(s, "198.51.100.1", now, why, sizeof(why)), 0);
	/* nor does a counter of that name */
	{
		long n;
		assert_int_equal(store_count(s, "harvest", "198.51.100.2", 60, 1,
		    now, &n), 0);
		assert_int_equal(state_blocked(s, "198.51.100.2", now, why,
		    sizeof(why)), 0);
	}
	/* IPv6, CIDR */
	assert_int_equal(store_set(s, "block", "2001:db8::/32", "v6", now, 0), 0);
	assert_int_equal(state_blocked(s, "2001:db8::1", now, why, sizeof(why)), 1);
	assert_string_equal(why, "v6");
	assert_int_equal(state_blocked(s, "2001:db9::1", now, why, sizeof(why)), 0);
}

static void
test_whitelisted(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	time_t now = 1000000;
	struct txn t;

	memset(&t, 0, sizeof(t));
	t.client_ip = "203.0.113.9";
	t.mail_from = "a@sender.test";
	t.mail_domain = "sender.test";
	assert_int_equal(state_whitelisted(s, &t, now), 0);
	assert_int_equal(store_set(s, "whitelist", "@other.test", "x", now, 0), 0);
	assert_int_equal(store_set(s, "whitelist", "b@sender.test", "x", now, 0), 0);
	assert_int_equal(store_set(s, "block", "203.0.113.9", "x", now, 0), 0);
	assert_int_equal(state_whitelisted(s, &t, now), 0);
	/* Entries are stored in lower case (db whitelist); the sender's
	 * address and domain are looked up in lower case. */
	assert_int_equal(store_set(s, "whitelist", "@sender.test", "x", now,
	    now + 10), 0);
	assert_int_equal(state_whitelisted(s, &t, now), 1);
	assert_int_equal(state_whitelisted(s, &t, now + 10), 0);	/* expired */
	assert_int_equal(store_set(s, "whitelist", "203.0.113.0/24", "x", now, 0), 0);
	assert_int_equal(state_whitelisted(s, &t, now + 10), 1);
	t.client_ip = "203.0.114.9";
	assert_int_equal(state_whitelisted(s, &t, now + 10), 0);
	t.mail_from = "B@sender.test";
	assert_int_equal(state_whitelisted(s, &t, now + 10), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whitelisted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
