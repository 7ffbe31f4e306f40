/*
 * iprev_test.c - unit tests of policy/iprev.c (RFC 8601 iprev) against a
 * dns_new_static table: pass, fail, no PTR, DNS errors, IPv6 and
 * IPv4-mapped clients, several names, the 10-name bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "iprev.h"
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
	free(t->iprev_name);
	memset(t, 0, sizeof(*t));
}

/* ---- the DNS data ---- */

static const struct dns_static_rr zone[] = {
	/* 192.0.2.10: one PTR, confirmed */
	{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, "good.example", DNS_OK },
	{ "good.example", DNS_T_A, "192.0.2.10", DNS_OK },
	/* 192.0.2.11: PTR to a name with another address */
	{ "11.2.0.192.in-addr.arpa", DNS_T_PTR, "bad.example", DNS_OK },
	{ "bad.example", DNS_T_A, "192.0.2.99", DNS_OK },
	/* 192.0.2.12: no PTR (nxdomain); 192.0.2.13: nodata */
	{ "13.2.0.192.in-addr.arpa", DNS_T_TXT, "x", DNS_OK },
	/* 192.0.2.14: PTR lookup times out */
	{ "14.2.0.192.in-addr.arpa", DNS_T_PTR, NULL, DNS_TIMEOUT },
	/* 192.0.2.15: two names, the second confirms */
	{ "15.2.0.192.in-addr.arpa", DNS_T_PTR, "nx15.example", DNS_OK },
	{ "15.2.0.192.in-addr.arpa", DNS_T_PTR, "ok15.example", DNS_OK },
	{ "ok15.example", DNS_T_A, "192.0.2.1", DNS_OK },
	{ "ok15.example", DNS_T_A, "192.0.2.15", DNS_OK },
	/* 192.0.2.16: forward lookup times out, no other name */
	{ "16.2.0.192.in-addr.arpa", DNS_T_PTR, "slow16.example", DNS_OK },
	{ "slow16.example", DNS_T_A, NULL, DNS_TIMEOUT },
	/* 192.0.2.17: name with only AAAA */
	{ "17.2.0.192.in-addr.arpa", DNS_T_PTR, "v6only.example", DNS_OK },
	{ "v6only.example", DNS_T_AAAA, "2001:db8::17", DNS_OK },
	/* 2001:db8::17: confirmed through AAAA */
	{ "7.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	    DNS_T_PTR, "v6only.example", DNS_OK },
	/* 2001:db8::18: PTR to a name with only an A record */
	{ "8.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	    DNS_T_PTR, "good.example", DNS_OK },
	/* 127.0.0.10 as in the integration zone */
	{ "10.0.0.127.in-addr.arpa", DNS_T_PTR, "good10.iprev.test", DNS_OK },
	{ "good10.iprev.test", DNS_T_A, "127.0.0.10", DNS_OK },
	/* 192.0.2.20: eleven names, only the eleventh confirms: ignored */
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n1.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n2.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n3.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n4.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n5.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n6.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n7.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n8.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n9.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n10.example", DNS_OK },
	{ "20.2.0.192.in-addr.arpa", DNS_T_PTR, "n11.example", DNS_OK },
	{ "n11.example", DNS_T_A, "192.0.2.20", DNS_OK },
};

struct iprev_case {
	const char	*ip;
	enum chk_res	 want;
	const char	*symbol;	/* NULL: no symbol at all */
	const char	*name;		/* t->iprev_name, NULL: none */
};

static const struct iprev_case cases[] = {
	{ "192.0.2.10", CHK_PASS, "IPREV_PASS", "good.example" },
	{ "192.0.2.11", CHK_FAIL, "IPREV_FAIL", "bad.example" },
	{ "192.0.2.12", CHK_PERMERROR, "IPREV_NONE", NULL },
	{ "192.0.2.13", CHK_PERMERROR, "IPREV_NONE", NULL },
	{ "192.0.2.14", CHK_TEMPERROR, "IPREV_TEMPERROR", NULL },
	{ "192.0.2.15", CHK_PASS, "IPREV_PASS", "ok15.example" },
	{ "192.0.2.16", CHK_TEMPERROR, "IPREV_TEMPERROR", "slow16.example" },
	{ "192.0.2.17", CHK_FAIL, "IPREV_FAIL", "v6only.example" },
	{ "2001:db8::17", CHK_PASS, "IPREV_PASS", "v6only.example" },
	{ "2001:DB8:0::17", CHK_PASS, "IPREV_PASS", "v6only.example" },
	{ "2001:db8::18", CHK_FAIL, "IPREV_FAIL", "good.example" },
	{ "::ffff:192.0.2.10", CHK_PASS, "IPREV_PASS", "good.example" },
	{ "::ffff:192.0.2.11", CHK_FAIL, "IPREV_FAIL", "bad.example" },
	{ "127.0.0.10", CHK_PASS, "IPREV_PASS", "good10.iprev.test" },
	{ "192.0.2.20", CHK_FAIL, "IPREV_FAIL", "n1.example" },
	{ "unknown", CHK_NONE, NULL, NULL },
	{ "", CHK_NONE, NULL, NULL },
	{ "192.0.2.300", CHK_NONE, NULL, NULL },
};

static void
test_cases(void **state)
{
	struct dns *d = dns_new_static(zone, ARRAY_LEN(zone));
	int bad = 0;

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct iprev_case *c = &cases[i];
		struct txn t;
		char *ip = xstrdup(c->ip);

		memset(&t, 0, sizeof(t));
		t.client_ip = ip;
		t.iprev_name = xstrdup("stale.example");	/* must be replaced */
		chk_iprev_run(&t, d);
		if (t.iprev != c->want) {
			print_error("%s: result %d, want %d\n", c->ip, t.iprev,
			    c->want);
			bad++;
		}
		if (c->symbol == NULL ? t.nsym != 0 :
		    t.nsym != 1 || !txn_has_symbol(&t, c->symbol)) {
			print_error("%s: %zu symbols, first %s, want %s\n", c->ip,
			    t.nsym, t.nsym ? t.sym[0].name : "-",
			    c->symbol ? c->symbol : "none");
			bad++;
		}
		if (c->symbol != NULL && (c->name == NULL ?
		    t.iprev_name != NULL : t.iprev_name == NULL ||
		    strcmp(t.iprev_name, c->name) != 0)) {
			print_error("%s: name %s, want %s\n", c->ip,
			    t.iprev_name ? t.iprev_name : "NULL",
			    c->name ? c->name : "NULL");
			bad++;
		}
		txn_clear(&t);
		free(ip);
	}
	dns_free(d);
	assert_int_equal(bad, 0);
}

static void
test_ip_parse(void **state)
{
	unsigned char a[16];

	(void)state;
	assert_int_equal(chk_iprev_ip_parse("192.0.2.1", a), 4);
	assert_memory_equal(a, "\xc0\x00\x02\x01", 4);
	assert_int_equal(chk_iprev_ip_parse("::ffff:192.0.2.1", a), 4);
	assert_memory_equal(a, "\xc0\x00\x02\x01", 4);
	assert_int_equal(chk_iprev_ip_parse("2001:db8::1", a), 16);
	assert_int_equal(a[0], 0x20);
	assert_int_equal(a[15], 1);
	assert_int_equal(chk_iprev_ip_parse("::1", a), 16);
	assert_int_equal(chk_iprev_ip_parse("1.2.3", a), 0);
	assert_int_equal(chk_iprev_ip_parse("[192.0.2.1]", a), 0);
	assert_int_equal(chk_iprev_ip_parse(NULL, a), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_parse),
		cmocka_unit_test(test_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
