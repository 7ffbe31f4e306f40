/*
 * greylist_test.c - greylisting (policy/greylist.c) through the engine
 * over a temporary database: first attempt deferred (451 4.7.1), an
 * early retry deferred again, a retry after the delay accepted, the
 * retry window, the triplet's parts, auto-whitelisting after N passes,
 * the exemptions, and on_db_error when the database fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "state_fx.h"

static const char *const gl_rules =
	"list internal_networks 10.0.0.0/8\n"
	"greylist enable on\n"
	"greylist delay 300s\n"
	"greylist retry_window 1h\n"
	"greylist awl_passes 2\n";

static enum verdict_action
gl(struct sfx *f, const char *ip, const char *from, const char *rcpt,
    struct verdict *v)
{
	return sfx_one(f, ip, NULL, from, rcpt, v);
}

static void
expect_grey(enum verdict_action a, const struct verdict *v, const char *what)
{
	if (a != VERDICT_TEMPFAIL)
		fail_msg("%s: %s, expected a deferral", what, verdict_name(a));
	assert_string_equal(v->symbol, "GREYLISTED");
	assert_string_equal(v->rcode, "451");
	assert_string_equal(v->xcode, "4.7.1");
}

static void
expect_pass(enum verdict_action a, const struct verdict *v, const char *what)
{
	if (a != VERDICT_CONTINUE)
		fail_msg("%s: %s (%s), expected to pass", what, verdict_name(a),
		    v->symbol);
}

static void
test_defer_then_accept(void **state)
{
	(void)state;
	/* awl_passes 0: no auto-whitelist in this test. */
	struct sfx *f = sfx_new("greylist enable on\ngreylist delay 300s\n"
	    "greylist awl_passes 0\n", NULL);
	struct verdict v;

	expect_grey(gl(f, "192.0.2.1", "<a@sender.test>", "<u@local.test>", &v),
	    &v, "first attempt");
	assert_non_null(strstr(v.text, "300 seconds"));
	state_clock_skew(100);
	expect_grey(gl(f, "192.0.2.1", "<a@sender.test>", "<u@local.test>", &v),
	    &v, "retry after 100 s");
	assert_non_null(strstr(v.text, "200 seconds"));
	/* Another address of the same /24 is the same triplet. */
	state_clock_skew(201);
	expect_pass(gl(f, "192.0.2.99", "<a@sender.test>", "<u@local.test>",
	    &v), &v, "retry after the delay");
	/* Once passed, the triplet passes at once. */
	expect_pass(gl(f, "192.0.2.1", "<A@Sender.Test>", "<U@Local.Test>", &v),
	    &v, "passed triplet, other case");
	/* Each part of the triplet counts. */
	expect_grey(gl(f, "192.0.3.1", "<a@sender.test>", "<u@local.test>", &v),
	    &v, "other network");
	expect_grey(gl(f, "192.0.2.1", "<b@sender.test>", "<u@local.test>", &v),
	    &v, "other sender");
	expect_grey(gl(f, "192.0.2.1", "<a@sender.test>", "<w@local.test>", &v),
	    &v, "other recipient");
	sfx_free(f);
}

/* A retry after the retry window starts over. */
static void
test_retry_window(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(gl_rules, NULL);
	struct verdict v;

	expect_grey(gl(f, "192.0.2.1", "<a@sender.test>", "<u@local.test>", &v),
	    &v, "first attempt");
	state_clock_skew(300 + 3600 + 1);
	expect_grey(gl(f, "192.0.2.1", "<a@sender.test>", "<u@local.test>", &v),
	    &v, "retry too late");
	sfx_free(f);
}

/* After awl_passes passed triplets the network is whitelisted: new
 * triplets from it pass at once. */
static void
test_auto_whitelist(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(gl_rules, NULL);
	struct verdict v;

	gl(f, "192.0.2.1", "<a@sender.test>", "<u1@local.test>", &v);
	gl(f, "192.0.2.1", "<a@sender.test>", "<u2@local.test>", &v);
	state_clock_skew(301);
	expect_pass(gl(f, "192.0.2.1", "<a@sender.test>", "<u1@local.test>",
	    &v), &v, "pass 1");
	expect_grey(gl(f, "192.0.2.1", "<a@sender.test>", "<new1@local.test>",
	    &v), &v, "one pass: not yet whitelisted");
	expect_pass(gl(f, "192.0.2.1", "<a@sender.test>", "<u2@local.test>",
	    &v), &v, "pass 2");
	expect_pass(gl(f, "192.0.2.7", "<z@other.test>", "<new2@local.test>",
	    &v), &v, "auto-whitelisted network");
	assert_int_equal(store_get(f->s, "awl", "192.0.2.0/24", state_now(),
	    NULL, 0, NULL, NULL), 1);
	sfx_free(f);
}

static void
test_exempt(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(gl_rules, NULL);
	struct verdict v;

	assert_int_not_equal(sfx_one(f, "10.0.0.1", NULL, "<a@sender.test>",
	    "<u@local.test>", &v), VERDICT_TEMPFAIL);
	assert_int_not_equal(sfx_one(f, "192.0.2.1", "alice", "<a@sender.test>",
	    "<u@local.test>", &v), VERDICT_TEMPFAIL);
	store_set(f->s, "whitelist", "@other.test", "admin", state_now(), 0);
	store_set(f->s, "whitelist", "198.51.100.0/24", "admin", state_now(), 0);
	expect_pass(gl(f, "192.0.2.1", "<a@other.test>", "<u@local.test>", &v),
	    &v, "whitelisted sender domain");
	expect_pass(gl(f, "198.51.100.3", "<a@sender.test>", "<u@local.test>",
	    &v), &v, "whitelisted network");
	sfx_free(f);
	/* Off by default. */
	f = sfx_new("greylist delay 300s\n", NULL);
	expect_pass(gl(f, "192.0.2.1", "<a@sender.test>", "<u@local.test>", &v),
	    &v, "greylisting off");
	sfx_free(f);
}

/* The database cannot be opened (its directory does not exist): the
 * store has no connection and on_db_error decides. */
static void
test_db_error(void **state)
{
	(void)state;
	static const char *const modes[] = { "tempfail", "accept" };

	for (size_t m = 0; m < ARRAY_LEN(modes); m++) {
		struct sfx *f = sfx_new(gl_rules, modes[m]);
		struct verdict v;
		char err[256], path[200];
		int opened;

		str_fmt(path, sizeof(path), "%s/missing/state.db", f->dir);
		struct store *bad = store_open_retry(path, err, sizeof(err),
		    &opened);
		assert_int_equal(opened, 0);
		eng_set_store(f->e, bad);
		enum verdict_action a;
		struct txn *t = sfx_conn(f, "192.0.2.1", NULL, &a, &v);
		if (m == 0) {
			assert_int_equal(a, VERDICT_TEMPFAIL);
			assert_string_equal(v.rcode, "451");
			assert_string_equal(v.xcode, "4.3.0");
		} else {
			assert_int_equal(a, VERDICT_CONTINUE);
			assert_int_equal(sfx_mail(t, "<a@sender.test>", &v),
			    VERDICT_CONTINUE);
			assert_int_equal(sfx_rcpt(t, "<u@local.test>", &v),
			    VERDICT_CONTINUE);
			assert_true(txn_has_symbol(t, "STATE_DB_ERROR"));
		}
		eng_txn_free(t);
		eng_set_store(f->e, f->s);
		store_close(bad);
		sfx_free(f);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defer_then_accept),
		cmocka_unit_test(test_retry_window),
		cmocka_unit_test(test_auto_whitelist),
		cmocka_unit_test(test_exempt),
		cmocka_unit_test(test_db_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
