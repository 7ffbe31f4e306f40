/*
 * authres_test.c - Authentication-Results and X-Spam-Status formatting
 * (policy/authres.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "authres.h"
#include "buf.h"
#include "txn.h"

static void
test_authres_full(void **state)
{
	struct txn t;
	struct txn_dkim_sig sigs[2] = {
		{ CHK_PASS, "example.org", "sel1", "AbCdEfGh", "rsa-sha256", NULL },
		{ CHK_FAIL, "other.example", "s2", "12345678", "ed25519-sha256",
		  "signature verification failed" },
	};
	char *v;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.client_ip = "192.0.2.10";
	t.iprev = CHK_PASS;
	t.iprev_name = "mail.example.org";
	t.helo = "mail.example.org";
	t.spf = (struct txn_spf){ CHK_FAIL, "example.org", "mailfrom",
		"user@example.org", NULL };
	t.dkim = sigs;
	t.ndkim = 2;
	t.dmarc.res = CHK_FAIL;
	t.dmarc.from_domain = "example.org";
	strcpy(t.dmarc.policy, "reject");
	strcpy(t.dmarc.disposition, "reject");
	v = authres_build(&t, "mx.example.net");
	assert_string_equal(v,
	    "mx.example.net;\n"
	    "\tiprev=pass (mail.example.org) policy.iprev=192.0.2.10;\n"
	    "\tspf=fail smtp.mailfrom=user@example.org;\n"
	    "\tdkim=pass header.d=example.org header.s=sel1 header.a=rsa-sha256 "
	    "header.b=AbCdEfGh;\n"
	    "\tdkim=fail (signature verification failed) header.d=other.example "
	    "header.s=s2 header.a=ed25519-sha256 header.b=12345678;\n"
	    "\tdmarc=fail (p=reject dis=reject) header.from=example.org");
	free(v);
}

static void
test_authres_null_sender_and_quoting(void **state)
{
	struct txn t;
	char *v;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.client_ip = "192.0.2.10";
	t.iprev = CHK_PERMERROR;
	t.helo = "bad;helo (x)";
	t.spf = (struct txn_spf){ CHK_NONE, "x", "helo", "postmaster@x",
		"no (SPF) record" };
	v = authres_build(&t, "mx.example.net");
	assert_string_equal(v,
	    "mx.example.net;\n"
	    "\tiprev=permerror policy.iprev=192.0.2.10;\n"
	    "\tspf=none (no \\(SPF\\) record) smtp.helo=\"bad;helo (x)\";\n"
	    "\tdkim=none");
	free(v);
}

static void
test_authres_none(void **state)
{
	struct txn t;
	char *v;

	(void)state;
	memset(&t, 0, sizeof(t));
	v = authres_build(&t, "mx.example.net");
	assert_string_equal(v, "mx.example.net; none");
	free(v);
}

/* A DMARC permerror for a message without a usable From still shows. */
static void
test_authres_dmarc_permerror_without_from(void **state)
{
	struct txn t;
	char *v;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.dmarc.res = CHK_PERMERROR;
	v = authres_build(&t, "mx.example.net");
	assert_string_equal(v, "mx.example.net;\n\tdmarc=permerror");
	free(v);
}

static void
test_authres_value_quoting(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	authres_value(&b, "plain.example");
	buf_puts(&b, "|");
	authres_value(&b, "\"quoted\"@x");
	buf_puts(&b, "|");
	authres_value(&b, "a\r\nb");
	buf_puts(&b, "|");
	authres_value(&b, "");
	assert_string_equal(b.data, "plain.example|\"\\\"quoted\\\"@x\"|\"a??b\"|\"\"");
	buf_free(&b);
}

static void
test_authres_is_ours(void **state)
{
	(void)state;
	assert_true(authres_is_ours(" mx.example.net; spf=pass", "mx.example.net"));
	assert_true(authres_is_ours("MX.Example.NET;spf=pass", "mx.example.net"));
	assert_true(authres_is_ours(" (comment) mx.example.net 1; none",
	    "mx.example.net"));
	assert_true(authres_is_ours("\n\tmx.example.net;\n\tdkim=pass",
	    "mx.example.net"));
	assert_true(authres_is_ours(" \"mx.example.net\"; none", "mx.example.net"));
	assert_false(authres_is_ours(" mx.example.net.evil; none", "mx.example.net"));
	assert_false(authres_is_ours(" other.example; none", "mx.example.net"));
	assert_false(authres_is_ours(" x.mx.example.net; none", "mx.example.net"));
	assert_false(authres_is_ours(" (unterminated mx.example.net; none",
	    "mx.example.net"));
	assert_false(authres_is_ours("", "mx.example.net"));
}

static void
test_authres_spam_status(void **state)
{
	struct txn t;
	struct txn_sym syms[3] = {
		{ "SPF_FAIL", NULL, 3.0, 0 }, { "IPREV_FAIL", NULL, 1.5, 1 },
		{ "DKIM_NONE", NULL, 0.2, 0 },
	};
	char *v;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.sym = syms;
	t.nsym = 3;
	t.score = 4.7;
	v = authres_spam_status(&t, 5.0, 0);
	assert_string_equal(v, "No, score=4.7 required=5.0 "
	    "tests=DKIM_NONE,IPREV_FAIL,SPF_FAIL");
	free(v);
	t.score = 12.25;
	v = authres_spam_status(&t, 5.0, 1);
	assert_string_equal(v, "Yes, score=12.2 required=5.0 "
	    "tests=DKIM_NONE,IPREV_FAIL,SPF_FAIL");
	free(v);
	t.nsym = 0;
	t.score = 0;
	v = authres_spam_status(&t, -1, 0);
	assert_string_equal(v, "No, score=0.0 required=none tests=NONE");
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_authres_full),
		cmocka_unit_test(test_authres_null_sender_and_quoting),
		cmocka_unit_test(test_authres_none),
		cmocka_unit_test(test_authres_dmarc_permerror_without_from),
		cmocka_unit_test(test_authres_value_quoting),
		cmocka_unit_test(test_authres_is_ours),
		cmocka_unit_test(test_authres_spam_status),
	};
	return cmocka_run_group_tests_name("authres", tests, NULL, NULL);
}
