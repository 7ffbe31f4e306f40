/*
 * sender_test.c - unit tests of policy/sender.c (RFC 5321 §5 implicit
 * MX, RFC 7505 null MX) against a dns_new_static table: each symbol where
 * it belongs and nowhere else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "sender.h"
#include "txn.h"
#include "util.h"

static void
txn_clear(struct txn *t)
{
	for (size_t i = 0; i < t->nsym; i++) {
		free(t->sym[i].name);
		free(t->sym[i].detail);
	}
	free(t->sym);
	memset(t, 0, sizeof(*t));
}

static const struct dns_static_rr zone[] = {
	{ "mx.example", DNS_T_MX, "10 mail.mx.example", DNS_OK },
	{ "mail.mx.example", DNS_T_A, "192.0.2.1", DNS_OK },
	{ "aonly.example", DNS_T_A, "192.0.2.2", DNS_OK },
	{ "aaaaonly.example", DNS_T_AAAA, "2001:db8::2", DNS_OK },
	{ "nullmx.example", DNS_T_MX, "0 .", DNS_OK },
	{ "nullmx.example", DNS_T_A, "192.0.2.3", DNS_OK },
	{ "nullplus.example", DNS_T_MX, "0 .", DNS_OK },
	{ "nullplus.example", DNS_T_MX, "10 mail.mx.example", DNS_OK },
	{ "txtonly.example", DNS_T_TXT, "v=spf1 -all", DNS_OK },
	{ "slowmx.example", DNS_T_MX, NULL, DNS_TIMEOUT },
	{ "failmx.example", DNS_T_MX, NULL, DNS_SERVFAIL },
	{ "slowa.example", DNS_T_TXT, "x", DNS_OK },
	{ "slowa.example", DNS_T_A, NULL, DNS_TIMEOUT },
	{ "cname.example", DNS_T_CNAME, "mx.example", DNS_OK },
};

static const struct {
	const char		*domain;
	enum chk_sender_res	 want;
	const char		*symbol;
} cases[] = {
	{ "mx.example", CHK_SENDER_OK, NULL },
	{ "MX.Example.", CHK_SENDER_OK, NULL },
	{ "cname.example", CHK_SENDER_OK, NULL },
	{ "aonly.example", CHK_SENDER_OK, NULL },
	{ "aaaaonly.example", CHK_SENDER_OK, NULL },
	{ "nullmx.example", CHK_SENDER_NULL_MX, "SENDER_NULL_MX" },
	{ "nullplus.example", CHK_SENDER_OK, NULL },
	{ "txtonly.example", CHK_SENDER_NO_MX, "SENDER_NO_MX" },
	{ "mail.mx.example", CHK_SENDER_OK, NULL },
	{ "nowhere.example", CHK_SENDER_NXDOMAIN, "SENDER_NXDOMAIN" },
	{ "slowmx.example", CHK_SENDER_TEMPERROR, "SENDER_TEMPERROR" },
	{ "failmx.example", CHK_SENDER_TEMPERROR, "SENDER_TEMPERROR" },
	{ "slowa.example", CHK_SENDER_TEMPERROR, "SENDER_TEMPERROR" },
	{ "example", CHK_SENDER_INVALID, "SENDER_INVALID" },
	{ "", CHK_SENDER_INVALID, "SENDER_INVALID" },
	{ "a..example", CHK_SENDER_INVALID, "SENDER_INVALID" },
	{ "bad domain.example", CHK_SENDER_INVALID, "SENDER_INVALID" },
	{ "[192.0.2.1]", CHK_SENDER_INVALID, "SENDER_INVALID" },
	{ "-x.example", CHK_SENDER_INVALID, "SENDER_INVALID" },
};

static void
test_eval_and_run(void **state)
{
	struct dns *d = dns_new_static(zone, ARRAY_LEN(zone));
	char why[256];
	int bad = 0;

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *dom = xstrdup(cases[i].domain);
		enum chk_sender_res r;
		struct txn t;

		why[0] = '\0';
		r = chk_sender_eval(d, dom, why, sizeof(why));
		if (r != cases[i].want) {
			print_error("%s: %d (%s), want %d\n", dom, r, why,
			    cases[i].want);
			bad++;
		}
		memset(&t, 0, sizeof(t));
		t.mail_domain = dom;
		chk_sender_run(&t, d);
		if (cases[i].symbol == NULL ? t.nsym != 0 : t.nsym != 1 ||
		    !txn_has_symbol(&t, cases[i].symbol)) {
			print_error("%s: symbol %s, want %s\n", dom,
			    t.nsym ? t.sym[0].name : "none",
			    cases[i].symbol ? cases[i].symbol : "none");
			bad++;
		}
		txn_clear(&t);
		free(dom);
	}
	dns_free(d);
	assert_int_equal(bad, 0);
}

static void
test_null_sender(void **state)
{
	struct dns *d = dns_new_static(zone, ARRAY_LEN(zone));
	struct txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.mail_domain = NULL;
	chk_sender_run(&t, d);
	assert_int_equal(t.nsym, 0);
	assert_int_equal(chk_sender_eval(d, NULL, NULL, 0),
	    CHK_SENDER_INVALID);
	assert_null(chk_sender_symbol(CHK_SENDER_OK));
	assert_string_equal(chk_sender_symbol(CHK_SENDER_NULL_MX),
	    "SENDER_NULL_MX");
	dns_free(d);
}

/*
 * test_literal_sender - MAIL FROM with an address literal: txn_set_mail()
 * leaves mail_domain NULL (as for <>), yet the literal is not the null
 * sender and gets SENDER_INVALID; <> and a malformed address get none
 * from this check (a malformed one is MAIL_MALFORMED already).
 */
static void
test_literal_sender(void **state)
{
	static const struct {
		const char	*from;
		const char	*symbol;	/* NULL: no SENDER_ symbol */
	} lit[] = {
		{ "<a@[192.0.2.1]>", "SENDER_INVALID" },
		{ "a@[IPv6:2001:db8::1]", "SENDER_INVALID" },
		{ "<>", NULL },
		{ "a@[300.1.1.1]", NULL },	/* MAIL_MALFORMED: no such address */
		{ "a@@b.example", NULL },
		{ "<a@mx.example>", NULL },
	};
	struct dns *d = dns_new_static(zone, ARRAY_LEN(zone));

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < ARRAY_LEN(lit); i++) {
		struct txn t;
		int have;

		memset(&t, 0, sizeof(t));
		(void)txn_set_mail(&t, lit[i].from);
		chk_sender_run(&t, d);
		have = txn_has_symbol(&t, "SENDER_INVALID");
		if (lit[i].symbol != NULL ? !have : have)
			print_error("%s: SENDER_INVALID %s\n", lit[i].from,
			    have ? "added" : "missing");
		assert_int_equal(have, lit[i].symbol != NULL);
		assert_false(txn_has_symbol(&t, "SENDER_NXDOMAIN"));
		free(t.mail_from);
		free(t.mail_domain);
		txn_clear(&t);
	}
	dns_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eval_and_run),
		cmocka_unit_test(test_null_sender),
		cmocka_unit_test(test_literal_sender),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
