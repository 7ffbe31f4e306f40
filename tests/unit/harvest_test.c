/*
 * harvest_test.c - directory-harvest control (policy/harvest.c)
 * through the engine over a temporary database: unknown recipients
 * refused with 550 and counted per client IP, the block at exactly the
 * threshold (421 at connect, 450 at RCPT), a second client unaffected,
 * the window, expiry and removal of the block, blocks seen by sessions
 * already open, tarpit delays, the
 * exemptions, and counting reported by the front ends (eng_bad_rcpt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <cmocka.h>

#include "state_fx.h"

static const char *const hv_rules =
	"list local_domains local.test open.local.test\n"
	"list internal_networks 10.0.0.0/8\n"
	"list valid_recipients known@local.test @open.local.test\n"
	"harvest threshold 3\n"
	"harvest window 60s\n"
	"harvest block 120s\n"
	"harvest tarpit_ms 0\n";

static void
expect(enum verdict_action a, const struct verdict *v, enum verdict_action want,
    const char *sym, const char *rcode, const char *what)
{
	if (a != want)
		fail_msg("%s: %s (%s), expected %s", what, verdict_name(a),
		    v->symbol, verdict_name(want));
	if (sym != NULL)
		assert_string_equal(v->symbol, sym);
	if (rcode != NULL)
		assert_string_equal(v->rcode, rcode);
}

/* Valid recipient forms pass; unknown ones get 550 5.1.1. */
static void
test_valid_recipients(void **state)
{
	(void)state;
	static const struct {
		const char	*rcpt;
		int		 valid;
	} forms[] = {
		{ "<known@local.test>", 1 },
		{ "<KNOWN@Local.Test>", 1 },
		{ "<known@local.test.>", 1 },
		{ "<\"known\"@local.test>", 1 },
		{ "<anyone@open.local.test>", 1 },	/* "@domain" entry */
		{ "<unknown@local.test>", 0 },
		{ "<known2@local.test>", 0 },
		{ "<\"unknown\"@local.test>", 0 },
	};
	struct sfx *f = sfx_new(hv_rules, NULL);
	struct verdict v;

	for (size_t i = 0; i < ARRAY_LEN(forms); i++) {
		/* A fresh client each time: no block gets in the way. */
		char ip[32];
		str_fmt(ip, sizeof(ip), "192.0.2.%zu", 100 + i);
		enum verdict_action a = sfx_one(f, ip, NULL, "<a@sender.test>",
		    forms[i].rcpt, &v);
		if (forms[i].valid)
			expect(a, &v, VERDICT_CONTINUE, NULL, NULL, forms[i].rcpt);
		else {
			expect(a, &v, VERDICT_REJECT, "RCPT_UNKNOWN", "550",
			    forms[i].rcpt);
			assert_string_equal(v.xcode, "5.1.1");
		}
	}
	sfx_free(f);
}

/* The scenario of the issue: one client tries unknown users and is
 * blocked at the threshold; another is unaffected; the block expires. */
static void
test_block_at_threshold(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(hv_rules, NULL);
	struct verdict v;
	enum verdict_action a;
	struct txn *t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);

	assert_int_equal(sfx_mail(t, "<a@sender.test>", &v), VERDICT_CONTINUE);
	expect(sfx_rcpt(t, "<x1@local.test>", &v), &v, VERDICT_REJECT,
	    "RCPT_UNKNOWN", "550", "1st unknown");
	expect(sfx_rcpt(t, "<x2@local.test>", &v), &v, VERDICT_REJECT,
	    "RCPT_UNKNOWN", "550", "2nd unknown");
	expect(sfx_rcpt(t, "<x3@local.test>", &v), &v, VERDICT_TEMPFAIL,
	    "HARVEST_BLOCKED", "421", "3rd unknown");
	assert_string_equal(v.xcode, "4.7.0");
	assert_int_equal(t->bad_rcpt, 3);
	/* Everything else in that connection: 450. */
	expect(sfx_rcpt(t, "<known@local.test>", &v), &v, VERDICT_TEMPFAIL,
	    "HARVEST_BLOCKED", "450", "valid rcpt while blocked");
	expect(sfx_mail(t, "<a@sender.test>", &v), &v, VERDICT_TEMPFAIL,
	    "HARVEST_BLOCKED", "450", "MAIL while blocked");
	eng_txn_free(t);
	/* A new connection: 421 at once. */
	t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);
	expect(a, &v, VERDICT_TEMPFAIL, "HARVEST_BLOCKED", "421", "connect");
	eng_txn_free(t);
	/* Another client, even in the same /24, is served. */
	expect(sfx_one(f, "192.0.2.2", NULL, "<a@sender.test>",
	    "<known@local.test>", &v), &v, VERDICT_CONTINUE, NULL, NULL,
	    "second client");
	/* The block lasts "harvest block" seconds. */
	state_clock_skew(118);
	expect(sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
	    "<known@local.test>", &v), &v, VERDICT_TEMPFAIL, "HARVEST_BLOCKED",
	    "421", "before expiry");
	state_clock_skew(3);
	expect(sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
	    "<known@local.test>", &v), &v, VERDICT_CONTINUE, NULL, NULL,
	    "after expiry");
	sfx_free(f);
}

/* The count is per window: unknown recipients spread wider than the
 * window never block. */
static void
test_window(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(hv_rules, NULL);
	struct verdict v;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2; i++)
			expect(sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
			    "<nobody@local.test>", &v), &v, VERDICT_REJECT,
			    "RCPT_UNKNOWN", "550", "unknown");
		state_clock_skew(61);
	}
	sfx_free(f);
}

/* A block is removed at once (what `mxwarden db unblock` does). */
static void
test_unblock(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(hv_rules, NULL);
	struct verdict v;

	for (int i = 0; i < 3; i++)
		sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
		    "<nobody@local.test>", &v);
	expect(sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
	    "<known@local.test>", &v), &v, VERDICT_TEMPFAIL, "HARVEST_BLOCKED",
	    "421", "blocked");
	assert_true(store_del(f->s, "block", "192.0.2.1") >= 1);
	expect(sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
	    "<known@local.test>", &v), &v, VERDICT_CONTINUE, NULL, NULL,
	    "unblocked");
	/* An admin CIDR block works the same way. */
	assert_int_equal(store_set(f->s, "block", "198.51.100.0/24", "admin",
	    state_now(), 0), 0);
	expect(sfx_one(f, "198.51.100.7", NULL, "<a@sender.test>",
	    "<known@local.test>", &v), &v, VERDICT_TEMPFAIL, "HARVEST_BLOCKED",
	    "421", "CIDR block");
	sfx_free(f);
}

/*
 * A session asks at connect, MAIL and each RCPT, and keeps a "not
 * blocked" answer for the second: a block written by this process (a
 * parallel session of the same client reaching the threshold) is seen
 * at the next command all the same; one written by another process
 * (`mxwarden db block`) within a second.
 */
static void
test_open_sessions(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(hv_rules, NULL);
	struct verdict v;
	enum verdict_action a;
	struct txn *t1 = sfx_conn(f, "192.0.2.9", NULL, &a, &v);
	struct txn *t2 = sfx_conn(f, "192.0.2.9", NULL, &a, &v);
	int seen_stale = 0;

	assert_int_equal(sfx_mail(t1, "<a@sender.test>", &v), VERDICT_CONTINUE);
	assert_int_equal(sfx_mail(t2, "<a@sender.test>", &v), VERDICT_CONTINUE);
	for (int i = 1; i <= 3; i++)
		(void)sfx_rcpt(t2, "<nobody@local.test>", &v);
	expect(sfx_rcpt(t2, "<known@local.test>", &v), &v, VERDICT_TEMPFAIL,
	    "HARVEST_BLOCKED", "450", "the session that was blocked");
	expect(sfx_rcpt(t1, "<known@local.test>", &v), &v, VERDICT_TEMPFAIL,
	    "HARVEST_BLOCKED", "450", "a parallel session, at once");
	eng_txn_free(t1);
	eng_txn_free(t2);

	/* Another process's block: the session's answer of this second
	 * stands (tried again when the second turned in between). */
	for (int k = 0; k < 5 && !seen_stale; k++) {
		char ip[32];
		time_t t0;

		str_fmt(ip, sizeof(ip), "192.0.2.%d", 20 + k);
		t1 = sfx_conn(f, ip, NULL, &a, &v);
		t0 = state_now();
		assert_int_equal(sfx_mail(t1, "<a@sender.test>", &v),
		    VERDICT_CONTINUE);
		assert_int_equal(store_set(f->s, "block", ip, "admin", t0, 0), 0);
		a = sfx_rcpt(t1, "<known@local.test>", &v);
		if (state_now() == t0) {
			expect(a, &v, VERDICT_CONTINUE, NULL, NULL,
			    "within the second");
			seen_stale = 1;
			state_clock_skew(1);
			expect(sfx_rcpt(t1, "<known@local.test>", &v), &v,
			    VERDICT_TEMPFAIL, "HARVEST_BLOCKED", "450",
			    "the next second");
		}
		eng_txn_free(t1);
	}
	assert_true(seen_stale);
	sfx_free(f);
}

/* Internal, authenticated and whitelisted clients are never counted. */
static void
test_exempt(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(hv_rules, NULL);
	struct verdict v;
	enum verdict_action a;
	long n;

	assert_int_equal(store_set(f->s, "whitelist", "192.0.2.50", "admin",
	    state_now(), 0), 0);
	for (int i = 0; i < 5; i++) {
		struct txn *t = sfx_conn(f, "10.0.0.1", NULL, &a, &v);
		assert_int_equal(eng_bad_rcpt(t, "x@local.test", &v),
		    VERDICT_CONTINUE);
		eng_txn_free(t);
		a = sfx_one(f, "192.0.2.50", NULL, "<a@sender.test>",
		    "<nobody@local.test>", &v);
		assert_int_not_equal(a, VERDICT_TEMPFAIL);
		a = sfx_one(f, "192.0.2.51", "alice", "<a@sender.test>",
		    "<nobody@local.test>", &v);
		assert_int_not_equal(a, VERDICT_TEMPFAIL);
	}
	assert_int_equal(store_count(f->s, "harvest", "192.0.2.50", 60, 0,
	    state_now(), &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_count(f->s, "harvest", "10.0.0.1", 60, 0,
	    state_now(), &n), 0);
	assert_int_equal(n, 0);
	sfx_free(f);
}

/* Invalid recipients reported by a front end (backend 5xx, Sendmail's
 * error mailer) count the same way. */
static void
test_bad_rcpt_from_front_end(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("harvest threshold 3\nharvest tarpit_ms 0\n",
	    NULL);
	struct verdict v;
	enum verdict_action a;
	struct txn *t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);

	assert_int_equal(eng_bad_rcpt(t, "a@x.test", &v), VERDICT_CONTINUE);
	assert_int_equal(eng_bad_rcpt(t, "b@x.test", &v), VERDICT_CONTINUE);
	expect(eng_bad_rcpt(t, "c@x.test", &v), &v, VERDICT_TEMPFAIL,
	    "HARVEST_BLOCKED", "421", "3rd reported");
	eng_txn_free(t);
	sfx_free(f);
}

static double
elapsed_ms(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1e3 + (b.tv_nsec - a->tv_nsec) / 1e6;
}

/* Tarpit: the n-th invalid recipient waits n * tarpit_ms, at most
 * tarpit_max_ms. */
static void
test_tarpit(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("harvest threshold 10\nharvest tarpit_ms 100\n"
	    "harvest tarpit_max_ms 250\n", NULL);
	struct verdict v;
	enum verdict_action a;
	struct txn *t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);
	static const double want[] = { 100, 200, 250, 250 };
	struct timespec t0;

	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(eng_bad_rcpt(t, "x@x.test", &v), VERDICT_CONTINUE);
		double ms = elapsed_ms(&t0);
		if (ms < want[i] - 5 || ms > want[i] + 150)
			fail_msg("invalid recipient %zu: waited %.0f ms, expected "
			    "%.0f", i + 1, ms, want[i]);
	}
	eng_txn_free(t);
	sfx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_recipients),
		cmocka_unit_test(test_block_at_threshold),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_unblock),
		cmocka_unit_test(test_open_sessions),
		cmocka_unit_test(test_exempt),
		cmocka_unit_test(test_bad_rcpt_from_front_end),
		cmocka_unit_test(test_tarpit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
