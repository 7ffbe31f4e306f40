/*
 * helo_test.c - unit tests of policy/helo.c: the pure syntax
 * classification, then every symbol of chk_helo_run() (and its absence
 * where it must not appear) against a dns_new_static table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "helo.h"
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

static void
test_classify(void **state)
{
	static const struct {
		const char *helo;
		enum chk_helo_kind want;
		const char *ip;		/* expected ip output, or NULL */
	} c[] = {
		{ "mail.example.com", CHK_HELO_FQDN, NULL },
		{ "mail.example.com.", CHK_HELO_FQDN, NULL },
		{ "MAIL.Example.COM", CHK_HELO_FQDN, NULL },
		{ "a-b.c-d.example", CHK_HELO_FQDN, NULL },
		{ "xn--bcher-kva.example", CHK_HELO_FQDN, NULL },
		{ "b\xc3\xbc" "cher.example", CHK_HELO_FQDN, NULL },
		{ "123.example", CHK_HELO_FQDN, NULL },
		{ "localhost", CHK_HELO_NOT_FQDN, NULL },
		{ "localhost.", CHK_HELO_NOT_FQDN, NULL },
		{ "WIN-PC01", CHK_HELO_NOT_FQDN, NULL },
		{ "[192.0.2.1]", CHK_HELO_LITERAL, "192.0.2.1" },
		{ "[IPv6:2001:db8::1]", CHK_HELO_LITERAL, "2001:db8::1" },
		{ "[ipv6:::1]", CHK_HELO_LITERAL, "::1" },
		{ "192.0.2.1", CHK_HELO_BARE_IP, "192.0.2.1" },
		{ "2001:db8::1", CHK_HELO_BARE_IP, "2001:db8::1" },
		{ "", CHK_HELO_INVALID, NULL },
		{ "mail example", CHK_HELO_INVALID, NULL },
		{ "mail\texample.com", CHK_HELO_INVALID, NULL },
		{ "mail.example.com\r", CHK_HELO_INVALID, NULL },
		{ "mail\x7f.example", CHK_HELO_INVALID, NULL },
		{ "mail_01.example.com", CHK_HELO_INVALID, NULL },
		{ "-mail.example.com", CHK_HELO_INVALID, NULL },
		{ "mail-.example.com", CHK_HELO_INVALID, NULL },
		{ "mail..example.com", CHK_HELO_INVALID, NULL },
		{ ".example.com", CHK_HELO_INVALID, NULL },
		{ "1.2.3", CHK_HELO_INVALID, NULL },
		{ "1.2.3.4.5", CHK_HELO_INVALID, NULL },
		{ "example.123", CHK_HELO_INVALID, NULL },
		{ "[192.0.2.1", CHK_HELO_INVALID, NULL },
		{ "[192.0.2.256]", CHK_HELO_INVALID, NULL },
		{ "[mail.example.com]", CHK_HELO_INVALID, NULL },
		{ "[IPv6:192.0.2.1]", CHK_HELO_INVALID, NULL },
		{ "[]", CHK_HELO_INVALID, NULL },
		{ "IPv6:2001:db8::1", CHK_HELO_INVALID, NULL },
		{ "a234567890123456789012345678901234567890123456789012345678901234.example",
		    CHK_HELO_INVALID, NULL },
		{ "a23456789012345678901234567890123456789012345678901234567890123.example",
		    CHK_HELO_FQDN, NULL },
	};
	char ip[64];

	(void)state;
	assert_int_equal(chk_helo_classify(NULL, ip, sizeof(ip)),
	    CHK_HELO_INVALID);
	assert_int_equal(chk_helo_classify("mail.example.com", NULL, 0),
	    CHK_HELO_FQDN);
	for (size_t i = 0; i < ARRAY_LEN(c); i++) {
		enum chk_helo_kind k = chk_helo_classify(c[i].helo, ip,
		    sizeof(ip));

		if (k != c[i].want)
			fail_msg("classify(\"%s\") = %d, want %d", c[i].helo, k,
			    c[i].want);
		if (c[i].ip != NULL && strcmp(ip, c[i].ip) != 0)
			fail_msg("classify(\"%s\") ip \"%s\", want \"%s\"",
			    c[i].helo, ip, c[i].ip);
		if (k == CHK_HELO_INVALID && ip[0] == '\0')
			fail_msg("classify(\"%s\"): no reason", c[i].helo);
	}
}

static void
test_hostname_ok(void **state)
{
	(void)state;
	assert_true(chk_helo_hostname_ok("example.com"));
	assert_true(chk_helo_hostname_ok("localhost"));
	assert_false(chk_helo_hostname_ok("example.com.."));
	assert_false(chk_helo_hostname_ok(""));
	assert_false(chk_helo_hostname_ok("."));
	assert_false(chk_helo_hostname_ok(NULL));
	assert_false(chk_helo_hostname_ok("12"));
	assert_false(chk_helo_hostname_ok("a_b.example"));
}

static const struct dns_static_rr zone[] = {
	{ "mail.example.com", DNS_T_A, "192.0.2.1", DNS_OK },
	{ "v6.example.com", DNS_T_AAAA, "2001:db8::1", DNS_OK },
	{ "mxonly.example.com", DNS_T_MX, "10 mail.example.com", DNS_OK },
	{ "txtonly.example.com", DNS_T_TXT, "hello", DNS_OK },
	{ "slow.example.com", 0, NULL, DNS_TIMEOUT },
	{ "broken.example.com", DNS_T_A, NULL, DNS_SERVFAIL },
	{ "mx.mxw.test", DNS_T_A, "127.0.0.1", DNS_OK },
};

struct helo_case {
	const char	*helo;
	const char	*client;
	int		 internal;
	const char	*symbol;	/* the one symbol, or NULL for none */
};

static const struct helo_case cases[] = {
	{ "mail.example.com", "192.0.2.1", 0, NULL },
	{ "v6.example.com", "192.0.2.1", 0, NULL },
	{ "mxonly.example.com", "192.0.2.1", 0, NULL },
	{ "txtonly.example.com", "192.0.2.1", 0, "HELO_NXDOMAIN" },
	{ "nowhere.example.com", "192.0.2.1", 0, "HELO_NXDOMAIN" },
	{ "slow.example.com", "192.0.2.1", 0, NULL },
	{ "broken.example.com", "192.0.2.1", 0, NULL },
	{ "", "192.0.2.1", 0, "HELO_INVALID" },
	{ "bad helo", "192.0.2.1", 0, "HELO_INVALID" },
	{ "under_score.example.com", "192.0.2.1", 0, "HELO_INVALID" },
	{ "192.0.2.1", "192.0.2.1", 0, "HELO_BARE_IP" },
	{ "2001:db8::1", "2001:db8::1", 0, "HELO_BARE_IP" },
	{ "[192.0.2.1]", "192.0.2.1", 0, NULL },
	{ "[192.0.2.1]", "::ffff:192.0.2.1", 0, NULL },
	{ "[192.0.2.2]", "192.0.2.1", 0, "HELO_LITERAL_MISMATCH" },
	{ "[IPv6:2001:db8::1]", "2001:db8:0:0::1", 0, NULL },
	{ "[IPv6:2001:db8::2]", "2001:db8::1", 0, "HELO_LITERAL_MISMATCH" },
	{ "[IPv6:::ffff:192.0.2.1]", "192.0.2.1", 0, NULL },
	{ "localhost", "192.0.2.1", 0, "HELO_NOT_FQDN" },
	{ "mx.mxw.test", "192.0.2.1", 0, "HELO_FORGED_OURS" },
	{ "MX.MXW.TEST.", "192.0.2.1", 0, "HELO_FORGED_OURS" },
	{ "a.mx.mxw.test", "192.0.2.1", 0, "HELO_FORGED_OURS" },
	{ "mta.example.net", "192.0.2.1", 0, "HELO_FORGED_OURS" },
	{ "mx.mxw.test", "127.0.0.1", 1, NULL },
	{ "xmx.mxw.test", "192.0.2.1", 0, "HELO_NXDOMAIN" },
	{ "mxw.test", "192.0.2.1", 0, "HELO_NXDOMAIN" },
};

static void
test_run(void **state)
{
	struct dns *d = dns_new_static(zone, ARRAY_LEN(zone));
	int bad = 0;

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct helo_case *c = &cases[i];
		char *helo = xstrdup(c->helo), *ip = xstrdup(c->client);
		char ours2[] = "mta.example.net";
		struct txn t;

		memset(&t, 0, sizeof(t));
		t.helo = helo;
		t.client_ip = ip;
		t.client_internal = c->internal;
		t.our_hostname = ours2;		/* the MTA's own $j */
		chk_helo_run(&t, d, "mx.mxw.test");
		if (c->symbol == NULL ? t.nsym != 0 :
		    t.nsym != 1 || !txn_has_symbol(&t, c->symbol)) {
			print_error("\"%s\" from %s: %zu symbols (%s), want %s\n",
			    c->helo, c->client, t.nsym,
			    t.nsym ? t.sym[0].name : "-",
			    c->symbol ? c->symbol : "none");
			bad++;
		}
		txn_clear(&t);
		free(helo);
		free(ip);
	}
	dns_free(d);
	assert_int_equal(bad, 0);
}

static void
test_run_null(void **state)
{
	struct dns *d = dns_new_static(zone, ARRAY_LEN(zone));
	char ip[] = "192.0.2.1";
	struct txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.client_ip = ip;
	chk_helo_run(&t, d, NULL);		/* no HELO at all */
	assert_true(txn_has_symbol(&t, "HELO_INVALID"));
	txn_clear(&t);
	dns_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_hostname_ok),
		cmocka_unit_test(test_run),
		cmocka_unit_test(test_run_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
