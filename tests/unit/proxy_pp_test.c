/*
 * proxy_pp_test.c - the PROXY protocol and CIDR lists (filter/proxy_pp.c):
 * v1 and v2 headers parsed (complete, partial, malformed), built and
 * parsed back, network lists matched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy_pp.h"

static void
test_v1(void **state)
{
	static const char ok4[] = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n";
	static const char ok6[] = "PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n";
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n",
		"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n",
		"PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 25 extra\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 25\n",
		"EHLO client.test\r\n",
	};
	struct proxy_pp_addr a;
	char err[200];
	size_t used;

	(void)state;
	assert_int_equal(proxy_pp_parse((const unsigned char *)ok4, strlen(ok4),
	    &used, &a, err, sizeof(err)), 1);
	assert_int_equal(used, strlen(ok4) - strlen("EHLO x\r\n"));
	assert_string_equal(a.src, "192.0.2.7");
	assert_int_equal(a.sport, 40000);
	assert_string_equal(a.dst, "198.51.100.1");
	assert_int_equal(a.dport, 25);
	assert_int_equal(a.local, 0);
	assert_int_equal(proxy_pp_parse((const unsigned char *)ok6, strlen(ok6),
	    &used, &a, err, sizeof(err)), 1);
	assert_string_equal(a.src, "2001:db8::7");
	assert_int_equal(a.dport, 65535);
	assert_int_equal(proxy_pp_parse((const unsigned char *)"PROXY UNKNOWN\r\n",
	    15, &used, &a, err, sizeof(err)), 1);
	assert_int_equal(a.local, 1);
	/* Partial: more bytes needed. */
	assert_int_equal(proxy_pp_parse((const unsigned char *)ok4, 3, &used, &a,
	    err, sizeof(err)), 0);
	assert_int_equal(proxy_pp_parse((const unsigned char *)ok4, 20, &used, &a,
	    err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proxy_pp_parse((const unsigned char *)bad[i],
		    strlen(bad[i]), &used, &a, err, sizeof(err)), -1);
}

static void
test_v2_roundtrip(void **state)
{
	unsigned char h[128];
	size_t len, used;
	struct proxy_pp_addr a;
	char err[200];

	(void)state;
	assert_int_equal(proxy_pp_build(2, "192.0.2.7", 40000, "::ffff:127.0.0.1",
	    25, h, sizeof(h), &len), 0);
	assert_int_equal(len, 28);
	assert_int_equal(h[12], 0x21);
	assert_int_equal(h[13], 0x11);
	assert_int_equal(proxy_pp_parse(h, len - 1, &used, &a, err, sizeof(err)), 0);
	assert_int_equal(proxy_pp_parse(h, len, &used, &a, err, sizeof(err)), 1);
	assert_int_equal(used, 28);
	assert_string_equal(a.src, "192.0.2.7");
	assert_string_equal(a.dst, "127.0.0.1");
	assert_int_equal(a.sport, 40000);
	assert_int_equal(a.dport, 25);

	assert_int_equal(proxy_pp_build(2, "2001:db8::7", 1, "2001:db8::1", 2, h,
	    sizeof(h), &len), 0);
	assert_int_equal(len, 52);
	assert_int_equal(proxy_pp_parse(h, len, &used, &a, err, sizeof(err)), 1);
	assert_string_equal(a.src, "2001:db8::7");
	assert_int_equal(a.dport, 2);

	/* LOCAL command: no address. */
	h[12] = 0x20;
	assert_int_equal(proxy_pp_parse(h, len, &used, &a, err, sizeof(err)), 1);
	assert_int_equal(a.local, 1);
	/* Version 1 in the v2 signature, or a length past the limit. */
	h[12] = 0x11;
	assert_int_equal(proxy_pp_parse(h, len, &used, &a, err, sizeof(err)), -1);
	h[12] = 0x21;
	h[14] = 0xff;
	assert_int_equal(proxy_pp_parse(h, len, &used, &a, err, sizeof(err)), -1);

	/* Mixed families and bad addresses are refused. */
	assert_int_equal(proxy_pp_build(2, "192.0.2.7", 1, "2001:db8::1", 2, h,
	    sizeof(h), &len), -1);
	assert_int_equal(proxy_pp_build(1, "nonsense", 1, "127.0.0.1", 2, h,
	    sizeof(h), &len), -1);
	assert_int_equal(proxy_pp_build(1, "192.0.2.7", 1, "127.0.0.1", 2, h, 10,
	    &len), -1);
}

static void
test_v1_build(void **state)
{
	unsigned char h[128];
	size_t len, used;
	struct proxy_pp_addr a;
	char err[200];

	(void)state;
	assert_int_equal(proxy_pp_build(1, "127.0.0.5", 1234, "127.0.0.1", 25, h,
	    sizeof(h), &len), 0);
	assert_memory_equal(h, "PROXY TCP4 127.0.0.5 127.0.0.1 1234 25\r\n", len);
	assert_int_equal(proxy_pp_parse(h, len, &used, &a, err, sizeof(err)), 1);
	assert_string_equal(a.src, "127.0.0.5");
}

static void
test_lists(void **state)
{
	char err[200];

	(void)state;
	assert_int_equal(proxy_ip_in_list("10.1.2.3", "192.0.2.0/24 10.0.0.0/8"), 1);
	assert_int_equal(proxy_ip_in_list("11.1.2.3", "192.0.2.0/24 10.0.0.0/8"), 0);
	assert_int_equal(proxy_ip_in_list("127.0.0.9", "127.0.0.8/31"), 1);
	assert_int_equal(proxy_ip_in_list("127.0.0.10", "127.0.0.8/31"), 0);
	assert_int_equal(proxy_ip_in_list("127.0.0.7", "127.0.0.7"), 1);
	assert_int_equal(proxy_ip_in_list("127.0.0.8", "127.0.0.7"), 0);
	assert_int_equal(proxy_ip_in_list("::1", "::1/128"), 1);
	assert_int_equal(proxy_ip_in_list("2001:db8::1", "2001:db8::/32"), 1);
	assert_int_equal(proxy_ip_in_list("2001:db9::1", "2001:db8::/32"), 0);
	assert_int_equal(proxy_ip_in_list("::ffff:10.0.0.1", "10.0.0.0/8"), 1);
	assert_int_equal(proxy_ip_in_list("10.0.0.1", "::/0"), 0);
	assert_int_equal(proxy_ip_in_list("10.0.0.1", ""), 0);
	assert_int_equal(proxy_ip_in_list("10.0.0.1", "garbage 10.0.0.0/8"), 1);
	assert_int_equal(proxy_ip_list_check("10.0.0.0/8, ::1", err, sizeof(err)), 0);
	assert_int_equal(proxy_ip_list_check("", err, sizeof(err)), 0);
	assert_int_equal(proxy_ip_list_check("10.0.0.0/33", err, sizeof(err)), -1);
	assert_string_equal(err, "bad network \"10.0.0.0/33\"");
	assert_int_equal(proxy_ip_list_check("example.com", err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v2_roundtrip),
		cmocka_unit_test(test_v1_build),
		cmocka_unit_test(test_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
