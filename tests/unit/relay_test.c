/*
 * relay_test.c - relay control (policy/relay.c): every recipient form
 * that has opened relays in the past, table-driven, first through
 * chk_relay_rcpt_local() and then through the engine at RCPT (554
 * 5.7.1, RELAY_DENIED, the recipient dropped); internal and
 * authenticated clients; LOCAL_SPOOF at end of message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "relay.h"
#include "state_fx.h"

static const char *const relay_rules =
	"list local_domains local.test\n"
	"list internal_networks 10.0.0.0/8\n";

static const struct {
	const char	*rcpt;
	int		 local;	/* chk_relay_rcpt_local() */
	int		 eng;	/* at RCPT: 1 passes, 0 RELAY_DENIED */
} relay_forms[] = {
	/* Plain local recipients. */
	{ "<user@local.test>", 1, 1 },
	{ "user@local.test", 1, 1 },
	{ "<USER@Local.TEST>", 1, 1 },		/* mixed case */
	{ "<user@local.test.>", 1, 1 },		/* trailing dot, still ours */
	{ "<\"user\"@local.test>", 1, 1 },		/* quoted, nothing hidden */
	{ "<\"first last\"@local.test>", 1, 1 },
	{ "postmaster", 1, 1 },
	{ "<postmaster>", 1, 1 },
	{ "<Postmaster>", 1, 1 },
	/* The classic tricks: never local. */
	{ "<user%other.test@local.test>", 0, 0 },	/* percent hack */
	{ "<USER%OTHER.TEST@LOCAL.TEST>", 0, 0 },
	{ "<user%other.test%local.test@local.test>", 0, 0 },
	{ "<\"user@other.test\"@local.test>", 0, 0 },	/* quoted address */
	{ "<\"user%other.test\"@local.test>", 0, 0 },
	{ "<\"other.test!user\"@local.test>", 0, 0 },
	{ "<user@other.test@local.test>", 0, 0 },	/* two '@' */
	{ "<@local.test:user@other.test>", 0, 0 },	/* source route */
	/* RFC 5321 §3.6.1: a source route is ignored; the address that
	 * remains is local, so the engine lets it pass (not a relay). */
	{ "<@local.test,@local.test:user@local.test>", 0, 1 },
	{ "<other.test!user@local.test>", 0, 0 },	/* bang path */
	{ "<user@[127.0.0.1]>", 0, 0 },		/* address literals */
	{ "<user@[192.0.2.26]>", 0, 0 },
	{ "<user@[IPv6:::1]>", 0, 0 },
	{ "<user@other.test>", 0, 0 },		/* plainly elsewhere */
	{ "<user@other.test.>", 0, 0 },
	{ "<user@OTHER.test>", 0, 0 },
	{ "<user@local.test.other.test>", 0, 0 },	/* our name as a prefix */
	{ "<user@notlocal.test>", 0, 0 },		/* our name as a suffix */
	{ "<user@local.test..>", 0, 0 },
	{ "<postmaster@other.test>", 0, 0 },
	{ "<>", 0, 0 },
	{ "<user>", 0, 0 },
	{ "<user@>", 0, 0 },
	{ "<\"unterminated@local.test>", 0, 0 },
	{ "<user@local.test", 0, 0 },
};

static void
test_rcpt_local_table(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(relay_rules, NULL);
	struct txn *t = eng_txn_new(f->e);

	for (size_t i = 0; i < ARRAY_LEN(relay_forms); i++) {
		int got = chk_relay_rcpt_local(eng_rules(t), relay_forms[i].rcpt);
		if (got != relay_forms[i].local)
			fail_msg("%s: local %d, expected %d", relay_forms[i].rcpt,
			    got, relay_forms[i].local);
	}
	eng_txn_free(t);
	sfx_free(f);
}

/* Through the engine: each form from an external client gets the
 * right answer at RCPT, and a refused recipient leaves the txn. */
static void
test_rcpt_engine_table(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(relay_rules, NULL);
	struct verdict v;
	enum verdict_action a;

	for (size_t i = 0; i < ARRAY_LEN(relay_forms); i++) {
		const char *r = relay_forms[i].rcpt;
		struct txn *t = sfx_conn(f, "192.0.2.77", NULL, &a, &v);
		assert_int_equal(a, VERDICT_CONTINUE);
		assert_int_equal(sfx_mail(t, "<a@sender.test>", &v),
		    VERDICT_CONTINUE);
		a = sfx_rcpt(t, r, &v);
		if (relay_forms[i].eng) {
			if (a == VERDICT_REJECT)
				fail_msg("%s: refused (%s)", r, v.symbol);
			assert_int_equal(t->nrcpt, 1);
		} else {
			if (a != VERDICT_REJECT)
				fail_msg("%s: not refused", r);
			assert_string_equal(v.symbol, "RELAY_DENIED");
			assert_string_equal(v.rcode, "554");
			assert_string_equal(v.xcode, "5.7.1");
			assert_string_equal(v.text, "Relay access denied");
			assert_int_equal(t->nrcpt, 0);
		}
		eng_txn_free(t);
	}
	sfx_free(f);
}

/* A refused recipient does not spoil the ones before it. */
static void
test_rcpt_mixed(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(relay_rules, NULL);
	struct verdict v;
	enum verdict_action a;
	struct txn *t = sfx_conn(f, "192.0.2.77", NULL, &a, &v);

	assert_int_equal(sfx_mail(t, "<a@sender.test>", &v), VERDICT_CONTINUE);
	assert_int_equal(sfx_rcpt(t, "<one@local.test>", &v), VERDICT_CONTINUE);
	assert_int_equal(sfx_rcpt(t, "<x%other.test@local.test>", &v),
	    VERDICT_REJECT);
	assert_int_equal(sfx_rcpt(t, "<two@local.test>", &v), VERDICT_CONTINUE);
	assert_int_equal(t->nrcpt, 2);
	assert_string_equal(t->rcpt[0], "one@local.test");
	assert_false(txn_has_symbol(t, "RELAY_DENIED"));
	eng_txn_free(t);
	sfx_free(f);
}

/* Internal and authenticated clients may relay; without local_domains
 * relay control is off. */
static void
test_rcpt_who_may_relay(void **state)
{
	(void)state;
	struct sfx *f = sfx_new(relay_rules, NULL);
	struct verdict v;

	assert_int_equal(sfx_one(f, "192.0.2.77", NULL, "<a@sender.test>",
	    "<u@other.test>", &v), VERDICT_REJECT);
	assert_int_not_equal(sfx_one(f, "10.1.2.3", NULL, "<a@sender.test>",
	    "<u@other.test>", &v), VERDICT_REJECT);
	assert_int_not_equal(sfx_one(f, "192.0.2.77", "alice", "<a@sender.test>",
	    "<u@other.test>", &v), VERDICT_REJECT);
	sfx_free(f);
	f = sfx_new("list internal_networks 10.0.0.0/8\n", NULL);
	assert_int_equal(sfx_one(f, "192.0.2.77", NULL, "<a@sender.test>",
	    "<u@other.test>", &v), VERDICT_CONTINUE);
	sfx_free(f);
}

/* The rule set may change the answer (here: a custom reply). */
static void
test_rcpt_custom_action(void **state)
{
	(void)state;
	struct sfx *f = sfx_new("list local_domains local.test\n"
	    "action RELAY_DENIED reject \"550 5.7.1 We are not a relay\"\n",
	    NULL);
	struct verdict v;

	assert_int_equal(sfx_one(f, "192.0.2.77", NULL, "<a@sender.test>",
	    "<u@other.test>", &v), VERDICT_REJECT);
	assert_string_equal(v.rcode, "550");
	assert_string_equal(v.text, "We are not a relay");
	sfx_free(f);
}

/* LOCAL_SPOOF: our domain as sender, towards us, from outside, with
 * neither SPF nor DKIM for it. */
static void
test_local_spoof(void **state)
{
	(void)state;
	static const struct {
		const char	*ip, *auth, *from, *rcpt;
		enum chk_res	 spf;
		const char	*dkim;
		int		 spoof;
	} cases[] = {
		{ "192.0.2.77", NULL, "<x@local.test>", "<u@local.test>",
		  CHK_NONE, NULL, 1 },
		{ "192.0.2.77", NULL, "<x@LOCAL.TEST>", "<U@Local.Test>",
		  CHK_FAIL, NULL, 1 },
		{ "192.0.2.77", NULL, "<x@local.test>", "<u@local.test>",
		  CHK_PASS, NULL, 0 },
		{ "192.0.2.77", NULL, "<x@local.test>", "<u@local.test>",
		  CHK_NONE, "local.test", 0 },
		{ "192.0.2.77", NULL, "<x@local.test>", "<u@local.test>",
		  CHK_NONE, "other.test", 1 },
		{ "192.0.2.77", NULL, "<x@other.test>", "<u@local.test>",
		  CHK_NONE, NULL, 0 },
		{ "192.0.2.77", "alice", "<x@local.test>", "<u@local.test>",
		  CHK_NONE, NULL, 0 },
		{ "10.0.0.5", NULL, "<x@local.test>", "<u@local.test>",
		  CHK_NONE, NULL, 0 },
	};
	struct sfx *f = sfx_new(relay_rules, NULL);

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct txn *t = eng_txn_new(f->e);
		txn_set_client(t, cases[i].ip, 40000, NULL);
		txn_set_auth(t, cases[i].auth);
		t->client_internal = strncmp(cases[i].ip, "10.", 3) == 0;
		txn_set_mail(t, cases[i].from);
		txn_add_rcpt(t, cases[i].rcpt);
		t->spf.res = cases[i].spf;
		t->spf.domain = xstrdup("local.test");
		if (cases[i].dkim != NULL) {
			t->dkim = calloc(1, sizeof(*t->dkim));
			t->ndkim = 1;
			t->dkim[0].res = CHK_PASS;
			t->dkim[0].domain = xstrdup(cases[i].dkim);
		}
		chk_relay_eom(t);
		if (txn_has_symbol(t, "LOCAL_SPOOF") != cases[i].spoof)
			fail_msg("case %zu: LOCAL_SPOOF %d, expected %d", i,
			    !cases[i].spoof, cases[i].spoof);
		eng_txn_free(t);
	}
	sfx_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rcpt_local_table),
		cmocka_unit_test(test_rcpt_engine_table),
		cmocka_unit_test(test_rcpt_mixed),
		cmocka_unit_test(test_rcpt_who_may_relay),
		cmocka_unit_test(test_rcpt_custom_action),
		cmocka_unit_test(test_local_spoof),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
