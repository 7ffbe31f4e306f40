/*
 * addr_test.c - envelope address parsing (policy/addr.c), table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

struct addr_case {
	const char	*in;
	enum addr_status st;
	const char	*local;
	const char	*domain;
};

static const struct addr_case cases[] = {
	{ "<user@example.org>", ADDR_OK, "user", "example.org" },
	{ "user@Example.ORG", ADDR_OK, "user", "example.org" },
	{ "<User@example.org.>", ADDR_OK, "User", "example.org" },
	{ "<>", ADDR_NULL, NULL, NULL },
	{ "", ADDR_NULL, NULL, NULL },
	{ "<@relay.example:user@example.org>", ADDR_OK, "user", "example.org" },
	{ "<@a.example,@b.example:u@c.example>", ADDR_OK, "u", "c.example" },
	{ "<\"john doe\"@example.org>", ADDR_OK, "\"john doe\"", "example.org" },
	{ "<\"a\\\"b\"@example.org>", ADDR_OK, "\"a\\\"b\"", "example.org" },
	{ "<user@[192.0.2.1]>", ADDR_OK, "user", "[192.0.2.1]" },
	{ "<user@[IPv6:2001:db8::1]>", ADDR_OK, "user", "[ipv6:2001:db8::1]" },
	{ "<user>", ADDR_NO_DOMAIN, NULL, NULL },
	{ "<user@>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@exa mple.org>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@-bad.example>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@bad-.example>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@a..example>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@example.org", ADDR_BAD_SYNTAX, NULL, NULL },
	{ "user@example.org>", ADDR_BAD_SYNTAX, NULL, NULL },
	{ "<us\ter@example.org>", ADDR_BAD_SYNTAX, NULL, NULL },
	{ "<us\rer@example.org>", ADDR_BAD_SYNTAX, NULL, NULL },
	{ "<\"unterminated@example.org>", ADDR_BAD_SYNTAX, NULL, NULL },
	{ "<@route-without-colon>", ADDR_BAD_SYNTAX, NULL, NULL },
	{ "<a,b@example.org>", ADDR_BAD_SYNTAX, NULL, NULL },
	{ "<user@[not literal>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@[300.1.1.1]>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@[1.2.3]>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@[IPv6:1.2.3.4]>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<user@[tag:content]>", ADDR_BAD_DOMAIN, NULL, NULL },
	{ "<@example.org>", ADDR_BAD_SYNTAX, NULL, NULL },
};

static void
test_addr_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct addr a;
		enum addr_status st = addr_parse(cases[i].in, &a);
		if (st != cases[i].st)
			fail_msg("case %zu \"%s\": status %s, want %s", i, cases[i].in,
			    addr_status_name(st), addr_status_name(cases[i].st));
		if (cases[i].local != NULL)
			assert_string_equal(a.local, cases[i].local);
		if (cases[i].domain != NULL)
			assert_string_equal(a.domain, cases[i].domain);
	}
}

static void
test_addr_limits(void **state)
{
	char in[700], local[70];
	struct addr a;

	(void)state;
	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(in, sizeof(in), "<%s@example.org>", local);
	assert_int_equal(addr_parse(in, &a), ADDR_OK);
	snprintf(in, sizeof(in), "<%sa@example.org>", local);
	assert_int_equal(addr_parse(in, &a), ADDR_TOO_LONG);
	/* A label of 64 octets is not a host name. */
	memset(local, 'b', 64);
	local[64] = '\0';
	snprintf(in, sizeof(in), "<u@%s.example>", local);
	assert_int_equal(addr_parse(in, &a), ADDR_BAD_DOMAIN);
	memset(in, 'x', 600);
	in[600] = '\0';
	assert_int_equal(addr_parse(in, &a), ADDR_TOO_LONG);
}

static void
test_addr_domain_ok(void **state)
{
	(void)state;
	assert_true(addr_domain_ok("example.org"));
	assert_true(addr_domain_ok("localhost"));
	assert_true(addr_domain_ok("_dmarc.example.org"));
	assert_false(addr_domain_ok(""));
	assert_false(addr_domain_ok(".example.org"));
	assert_false(addr_domain_ok("example..org"));
	assert_false(addr_domain_ok("exa$mple.org"));
}

/* addr_is_routed: the recipient forms that have opened relays. */
static void
test_addr_is_routed(void **state)
{
	static const struct {
		const char	*in;
		int		 routed;
	} t[] = {
		{ "<user@example.org>", 0 },
		{ "<\"user\"@example.org>", 0 },
		{ "<\"first last\"@example.org>", 0 },
		{ "<USER@Example.ORG.>", 0 },
		{ "<user%other.example@example.org>", 1 },
		{ "<\"user%other.example\"@example.org>", 1 },
		{ "<\"user@other.example\"@example.org>", 1 },
		{ "<other.example!user@example.org>", 1 },
		{ "<\"other.example!user\"@example.org>", 1 },
		{ "<@example.org:user@other.example>", 1 },
		{ "<@a.example,@b.example:user@example.org>", 1 },
	};
	struct addr a;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (addr_parse(t[i].in, &a) != ADDR_OK)
			fail_msg("%s: does not parse", t[i].in);
		if (addr_is_routed(&a) != t[i].routed)
			fail_msg("%s: routed %d, expected %d", t[i].in,
			    !t[i].routed, t[i].routed);
	}
	/* Two '@' and literals are refused or flagged by the parser. */
	assert_int_not_equal(addr_parse("<user@other.example@example.org>", &a),
	    ADDR_OK);
	assert_int_equal(addr_parse("<user@[127.0.0.1]>", &a), ADDR_OK);
	assert_true(a.literal);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_table),
		cmocka_unit_test(test_addr_limits),
		cmocka_unit_test(test_addr_domain_ok),
		cmocka_unit_test(test_addr_is_routed),
	};
	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
