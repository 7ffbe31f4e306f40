/*
 * txn_test.c - the transaction's setters and the reply both front ends
 * send (policy/txn.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "txn.h"

static void
test_verdict_reply(void **state)
{
	static const struct {
		enum verdict_action	 act;
		const char		*rcode, *xcode, *text;
		const char		*want_r, *want_x, *want_t;
		int			 temp;
	} c[] = {
		{ VERDICT_REJECT, "550", "5.7.26", "DMARC", "550", "5.7.26", "DMARC", 0 },
		{ VERDICT_TEMPFAIL, "451", "4.1.8", "later", "451", "4.1.8", "later", 1 },
		/* The code's class wins over the action. */
		{ VERDICT_REJECT, "421", "4.7.0", "busy", "421", "4.7.0", "busy", 1 },
		/* Enhanced code of the wrong class or malformed: replaced. */
		{ VERDICT_REJECT, "550", "4.1.1", "x", "550", "5.7.1", "x", 0 },
		{ VERDICT_REJECT, "550", "5.1234.1", "x", "550", "5.7.1", "x", 0 },
		{ VERDICT_REJECT, "550", "5.1.", "x", "550", "5.7.1", "x", 0 },
		/* No or bad code: the action's default. */
		{ VERDICT_TEMPFAIL, "", "", "", "451", "4.7.1", "Try again later", 1 },
		{ VERDICT_REJECT, "250", "2.0.0", "", "550", "5.7.1", "Rejected by policy", 0 },
		{ VERDICT_REJECT, "55", "", "t", "550", "5.7.1", "t", 0 },
		/* Control characters never reach the wire. */
		{ VERDICT_REJECT, "550", "5.7.1", "a\r\nRSET\tb", "550", "5.7.1",
		  "a  RSET b", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct verdict v;
		char r[4], x[16], t[64];

		memset(&v, 0, sizeof(v));
		v.action = c[i].act;
		strcpy(v.rcode, c[i].rcode);
		strcpy(v.xcode, c[i].xcode);
		strcpy(v.text, c[i].text);
		int temp = verdict_reply(&v, r, x, t, sizeof(t));
		if (temp != c[i].temp || strcmp(r, c[i].want_r) != 0 ||
		    strcmp(x, c[i].want_x) != 0 || strcmp(t, c[i].want_t) != 0)
			fail_msg("case %zu: got %d \"%s %s %s\"", i, temp, r, x, t);
	}
	/* Text is cut to the buffer. */
	struct verdict v = { .action = VERDICT_REJECT };
	char r[4], x[16], t[5];
	strcpy(v.text, "abcdefgh");
	verdict_reply(&v, r, x, t, sizeof(t));
	assert_string_equal(t, "abcd");
}

static void
test_txn_setters(void **state)
{
	struct txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(txn_set_mail(&t, "<User@Example.ORG>"), 0);
	assert_string_equal(t.mail_from, "User@example.org");
	assert_string_equal(t.mail_domain, "example.org");
	assert_int_equal(txn_set_mail(&t, "<>"), 0);
	assert_string_equal(t.mail_from, "");
	assert_null(t.mail_domain);
	assert_int_equal(txn_set_mail(&t, "a@[192.0.2.1]"), 0);
	assert_null(t.mail_domain);
	assert_int_equal(txn_set_mail(&t, "<bad@@x>"), -1);
	assert_true(txn_has_symbol(&t, "MAIL_MALFORMED"));
	assert_int_equal(txn_add_rcpt(&t, "<r@example.net>"), 0);
	assert_string_equal(t.rcpt[0], "r@example.net");
	txn_symbol(&t, "A_SYM", "one");
	txn_symbol(&t, "A_SYM", "two");
	size_t n = 0;
	for (size_t i = 0; i < t.nsym; i++)
		n += strcmp(t.sym[i].name, "A_SYM") == 0;
	assert_int_equal(n, 1);
	txn_add_header(&t, "Subject", " hi");
	txn_add_header(&t, "subject", " again");
	assert_string_equal(txn_header_get(&t, "SUBJECT", 1), " again");
	assert_null(txn_header_get(&t, "Subject", 2));
	txn_set_our_hostname(&t, "");
	assert_null(t.our_hostname);
	txn_set_our_hostname(&t, "mx.example.org");
	assert_string_equal(t.our_hostname, "mx.example.org");
	txn_clear_all(&t);
}

/* Connection-level symbols survive a new message; message ones go. */
static void
test_txn_reset_keeps_connection_symbols(void **state)
{
	struct txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	txn_symbol(&t, "IPREV_FAIL", NULL);
	txn_set_mail(&t, "a@example.org");
	txn_symbol(&t, "SPF_FAIL", NULL);
	txn_clear_message(&t);
	assert_true(txn_has_symbol(&t, "IPREV_FAIL"));
	assert_false(txn_has_symbol(&t, "SPF_FAIL"));
	assert_null(t.mail_from);
	txn_clear_all(&t);
}

/* TLS facts: both kept, "" is no value, a later call replaces both,
 * a new message keeps them (they belong to the connection). */
static void
test_txn_tls(void **state)
{
	struct txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	txn_set_tls(&t, NULL, NULL);
	assert_null(t.tls_version);
	assert_null(t.tls_cipher);
	txn_set_tls(&t, "", "");
	assert_null(t.tls_version);
	assert_null(t.tls_cipher);
	txn_set_tls(&t, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384");
	assert_string_equal(t.tls_version, "TLSv1.2");
	assert_string_equal(t.tls_cipher, "ECDHE-RSA-AES256-GCM-SHA384");
	txn_set_tls(&t, "TLSv1.3", NULL);
	assert_string_equal(t.tls_version, "TLSv1.3");
	assert_null(t.tls_cipher);
	txn_set_tls(&t, "TLSv1.3", "TLS_AES_256_GCM_SHA384");
	txn_set_mail(&t, "a@example.org");
	txn_clear_message(&t);
	assert_string_equal(t.tls_version, "TLSv1.3");
	assert_string_equal(t.tls_cipher, "TLS_AES_256_GCM_SHA384");
	txn_clear_all(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_reply),
		cmocka_unit_test(test_txn_setters),
		cmocka_unit_test(test_txn_reset_keeps_connection_symbols),
		cmocka_unit_test(test_txn_tls),
	};
	return cmocka_run_group_tests_name("txn", tests, NULL, NULL);
}
