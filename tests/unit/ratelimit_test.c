/*
 * ratelimit_test.c - rate limits (policy/ratelimit.c) through the
 * engine over a temporary database: each key reaches its limit at
 * exactly the configured count (LIMIT events pass, the next gets 451
 * 4.7.1 and RATE_LIMITED), another key is not affected, and the
 * windowed keys recover after the window (the state clock is moved).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "state_fx.h"

#define RL_LIMIT	3
#define RL_WINDOW	60

/* One event counted by a windowed key: a whole envelope whose key is
 * "same" (1) or another one (0), the n-th of its series. */
struct rl_case {
	const char	*rule;
	const char	*ip[2];		/* [0] other key, [1] same key */
	const char	*auth[2];
	const char	*from[2];
	int		 vary_same;	/* the "same" events differ in another
					 * field that must not matter */
};

static const struct rl_case rl_windowed[] = {
	{ "ratelimit r ip 3/60s\n", { "192.0.2.2", "192.0.2.1" },
	  { NULL, NULL }, { "<a@sender.test>", "<a@sender.test>" }, 0 },
	/* /24: four addresses of one network count together. */
	{ "ratelimit r net 3/60s\n", { "192.0.3.1", "192.0.2.%d" },
	  { NULL, NULL }, { "<a@sender.test>", "<a@sender.test>" }, 1 },
	{ "ratelimit r net 3/60s\n", { "2001:db8:0:2::1", "2001:db8:0:1::%d" },
	  { NULL, NULL }, { "<a@sender.test>", "<a@sender.test>" }, 1 },
	/* Sender: the case of the address does not make another key. */
	{ "ratelimit r sender 3/60s\n", { "192.0.2.1", "192.0.2.%d" },
	  { NULL, NULL }, { "<b@sender.test>", "<A@Sender.Test>" }, 1 },
	{ "ratelimit r sender_domain 3/60s\n", { "192.0.2.1", "192.0.2.%d" },
	  { NULL, NULL }, { "<a@other.test>", "<u%d@SENDER.test>" }, 1 },
	{ "ratelimit r auth_user 3/60s\n", { "192.0.2.1", "192.0.2.%d" },
	  { "bob", "alice" }, { "<a@sender.test>", "<a@sender.test>" }, 1 },
	{ "ratelimit r conn_per_ip 3/60s\n", { "192.0.2.2", "192.0.2.1" },
	  { NULL, NULL }, { "<a@sender.test>", "<a@sender.test>" }, 0 },
};

static enum verdict_action
rl_event(struct sfx *f, const struct rl_case *c, int same, int n,
    struct verdict *v)
{
	char ip[64], from[64];

	str_fmt(ip, sizeof(ip), c->ip[same], n + 1);
	str_fmt(from, sizeof(from), c->from[same], n + 1);
	return sfx_one(f, ip, c->auth[same], from, "<u@local.test>", v);
}

static void
rl_expect_limited(const char *rule, enum verdict_action a,
    const struct verdict *v)
{
	if (a != VERDICT_TEMPFAIL)
		fail_msg("%s: event %d: %s, expected tempfail", rule,
		    RL_LIMIT + 1, verdict_name(a));
	assert_string_equal(v->symbol, "RATE_LIMITED");
	assert_string_equal(v->rcode, "451");
	assert_string_equal(v->xcode, "4.7.1");
}

static void
test_windowed_keys(void **state)
{
	(void)state;
	for (size_t k = 0; k < ARRAY_LEN(rl_windowed); k++) {
		const struct rl_case *c = &rl_windowed[k];
		struct sfx *f = sfx_new(c->rule, NULL);
		struct verdict v;
		enum verdict_action a;
		int n;

		for (n = 0; n < RL_LIMIT; n++) {
			a = rl_event(f, c, 1, n, &v);
			if (a != VERDICT_CONTINUE && a != VERDICT_ACCEPT)
				fail_msg("%s: event %d refused (%s)", c->rule,
				    n + 1, v.symbol);
		}
		rl_expect_limited(c->rule, rl_event(f, c, 1, n++, &v), &v);
		/* Still over the limit: every further event is refused. */
		rl_expect_limited(c->rule, rl_event(f, c, 1, n++, &v), &v);
		a = rl_event(f, c, 0, 0, &v);
		if (a == VERDICT_TEMPFAIL)
			fail_msg("%s: another key is limited too", c->rule);
		/* Just before the window ends: still limited. */
		state_clock_skew(RL_WINDOW - 2);
		rl_expect_limited(c->rule, rl_event(f, c, 1, 0, &v), &v);
		state_clock_skew(3);
		a = rl_event(f, c, 1, 0, &v);
		if (a == VERDICT_TEMPFAIL)
			fail_msg("%s: not recovered after the window", c->rule);
		sfx_free(f);
	}
}

/* Messages per connection: the 4th MAIL in one connection is refused;
 * a new connection starts again. */
static void
test_msg_per_conn(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("ratelimit r msg_per_conn 3\n", NULL);
	struct verdict v;
	enum verdict_action a;
	struct txn *t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);

	for (int i = 0; i < RL_LIMIT; i++)
		assert_int_equal(sfx_mail(t, "<a@sender.test>", &v),
		    VERDICT_CONTINUE);
	rl_expect_limited("msg_per_conn", sfx_mail(t, "<a@sender.test>", &v),
	    &v);
	eng_txn_free(t);
	t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);
	assert_int_equal(sfx_mail(t, "<a@sender.test>", &v), VERDICT_CONTINUE);
	eng_txn_free(t);
	sfx_free(f);
}

/* Recipients per message: the 4th recipient alone is refused (it
 * leaves the txn, the message stands); the next message starts again. */
static void
test_rcpt_per_msg(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("ratelimit r rcpt_per_msg 3\n", NULL);
	struct verdict v;
	enum verdict_action a;
	struct txn *t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);
	char r[64];

	assert_int_equal(sfx_mail(t, "<a@sender.test>", &v), VERDICT_CONTINUE);
	for (int i = 0; i < RL_LIMIT; i++) {
		str_fmt(r, sizeof(r), "<u%d@local.test>", i);
		assert_int_equal(sfx_rcpt(t, r, &v), VERDICT_CONTINUE);
	}
	rl_expect_limited("rcpt_per_msg", sfx_rcpt(t, "<u9@local.test>", &v),
	    &v);
	assert_int_equal(t->nrcpt, RL_LIMIT);
	assert_false(txn_has_symbol(t, "RATE_LIMITED"));
	assert_int_equal(sfx_mail(t, "<a@sender.test>", &v), VERDICT_CONTINUE);
	assert_int_equal(sfx_rcpt(t, "<u0@local.test>", &v), VERDICT_CONTINUE);
	eng_txn_free(t);
	sfx_free(f);
}

/* A whitelisted client is exempt from the in-memory limits too: the
 * whitelist is read only once a count is over its limit. */
static void
test_rcpt_per_msg_whitelisted(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("ratelimit r rcpt_per_msg 3\n", NULL);
	struct verdict v;
	enum verdict_action a;
	char r[64];

	assert_int_equal(store_set(f->s, "whitelist", "192.0.2.7", "admin",
	    state_now(), 0), 0);
	struct txn *t = sfx_conn(f, "192.0.2.7", NULL, &a, &v);
	assert_int_equal(sfx_mail(t, "<a@sender.test>", &v), VERDICT_CONTINUE);
	for (int i = 0; i < RL_LIMIT + 2; i++) {
		str_fmt(r, sizeof(r), "<u%d@local.test>", i);
		assert_int_equal(sfx_rcpt(t, r, &v), VERDICT_CONTINUE);
	}
	assert_int_equal(t->nrcpt, RL_LIMIT + 2);
	eng_txn_free(t);
	sfx_free(f);
}

/* Internal clients are exempt (except from auth_user limits); the
 * rule's own reply is used. */
static void
test_exempt_and_reply(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("list internal_networks 10.0.0.0/8\n"
	    "ratelimit r ip 1/60s \"421 4.7.0 Slow down\"\n", NULL);
	struct verdict v;

	for (int i = 0; i < 3; i++)
		assert_int_not_equal(sfx_one(f, "10.0.0.1", NULL,
		    "<a@sender.test>", "<u@local.test>", &v), VERDICT_TEMPFAIL);
	assert_int_equal(sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
	    "<u@local.test>", &v), VERDICT_CONTINUE);
	assert_int_equal(sfx_one(f, "192.0.2.1", NULL, "<a@sender.test>",
	    "<u@local.test>", &v), VERDICT_TEMPFAIL);
	assert_string_equal(v.rcode, "421");
	assert_string_equal(v.text, "Slow down");
	sfx_free(f);
}

/* Two limits on one event: the first one over its limit decides, and
 * the counts stay exact in the store. */
static void
test_counts_in_store(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("ratelimit a ip 100/60s\n"
	    "ratelimit b sender 100/60s\n", NULL);
	struct verdict v;
	long n;

	for (int i = 0; i < 7; i++)
		sfx_one(f, "192.0.2.9", NULL, "<a@sender.test>",
		    "<u@local.test>", &v);
	assert_int_equal(store_count(f->s, "rate:a", "192.0.2.9", 60, 0,
	    state_now(), &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(store_count(f->s, "rate:b", "a@sender.test", 60, 0,
	    state_now(), &n), 0);
	assert_int_equal(n, 7);
	sfx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windowed_keys),
		cmocka_unit_test(test_msg_per_conn),
		cmocka_unit_test(test_rcpt_per_msg),
		cmocka_unit_test(test_rcpt_per_msg_whitelisted),
		cmocka_unit_test(test_exempt_and_reply),
		cmocka_unit_test(test_counts_in_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
