/*
 * dns_test.c - unit tests of policy/dns.c: the static resolver's
 * semantics, rdata decoding, name validation, reverse names and the
 * options of the libunbound resolver (no network is used: queries to the
 * real resolver are tested in tests/integration/dns.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns.h"
#include "log.h"
#include "util.h"

static const struct dns_static_rr table[] = {
	{ "host.example", DNS_T_A, "192.0.2.1", DNS_OK },
	{ "HOST.Example.", DNS_T_A, "192.0.2.2", DNS_OK },
	{ "host.example", DNS_T_AAAA, "2001:db8::1", DNS_OK },
	{ "example", DNS_T_MX, "10 MX1.Example.", DNS_OK },
	{ "example", DNS_T_MX, "20 mx2.example", DNS_OK },
	{ "null.example", DNS_T_MX, "0 .", DNS_OK },
	{ "example", DNS_T_TXT, "v=spf1 -all", DNS_OK },
	{ "multi.example", DNS_T_TXT, "\"v=spf1 \" \"ip4:192.0.2.0/24\" "
	    "\"  -all\"", DNS_OK },
	{ "esc.example", DNS_T_TXT, "\"a\\\"b\\\\c\\000d\"", DNS_OK },
	{ "1.2.0.192.in-addr.arpa", DNS_T_PTR, "Host.Example.", DNS_OK },
	{ "alias.example", DNS_T_CNAME, "host.example", DNS_OK },
	{ "loop1.example", DNS_T_CNAME, "loop2.example", DNS_OK },
	{ "loop2.example", DNS_T_CNAME, "loop1.example", DNS_OK },
	{ "dangling.example", DNS_T_CNAME, "nowhere.example", DNS_OK },
	{ "fail.example", 0, NULL, DNS_SERVFAIL },
	{ "slow.example", DNS_T_TXT, NULL, DNS_TIMEOUT },
	{ "slow.example", DNS_T_A, "192.0.2.9", DNS_OK },
	{ "x.ent.example", DNS_T_A, "192.0.2.3", DNS_OK },
	{ "badmx.example", DNS_T_MX, "\\# 2 0001", DNS_OK },
	{ "raw.example", DNS_T_A, "\\# 4 c0000205", DNS_OK },
	{ "raw.example", 99, "\\# 3 0261 62", DNS_OK },
};

struct qcase {
	const char	*name;
	uint16_t	 type;
	enum dns_status	 status;
	const char	*text[3];	/* expected texts, in order */
	int		 pref[3];
};

static const struct qcase qcases[] = {
	{ "host.example", DNS_T_A, DNS_OK, { "192.0.2.1", "192.0.2.2" }, {0} },
	{ "Host.EXAMPLE.", DNS_T_A, DNS_OK, { "192.0.2.1", "192.0.2.2" }, {0} },
	{ "host.example", DNS_T_AAAA, DNS_OK, { "2001:db8::1" }, {0} },
	{ "host.example", DNS_T_MX, DNS_NODATA, {0}, {0} },
	{ "nothere.example", DNS_T_A, DNS_NXDOMAIN, {0}, {0} },
	{ "example", DNS_T_MX, DNS_OK, { "mx1.example", "mx2.example" },
	    { 10, 20 } },
	{ "null.example", DNS_T_MX, DNS_OK, { "" }, { 0 } },
	{ "example", DNS_T_TXT, DNS_OK, { "v=spf1 -all" }, {0} },
	{ "multi.example", DNS_T_TXT, DNS_OK,
	    { "v=spf1 ip4:192.0.2.0/24  -all" }, {0} },
	{ "1.2.0.192.in-addr.arpa", DNS_T_PTR, DNS_OK, { "host.example" },
	    {0} },
	{ "alias.example", DNS_T_A, DNS_OK, { "192.0.2.1", "192.0.2.2" },
	    {0} },
	{ "alias.example", DNS_T_CNAME, DNS_OK, { "host.example" }, {0} },
	{ "alias.example", DNS_T_TXT, DNS_NODATA, {0}, {0} },
	{ "dangling.example", DNS_T_A, DNS_NXDOMAIN, {0}, {0} },
	{ "loop1.example", DNS_T_A, DNS_SERVFAIL, {0}, {0} },
	{ "fail.example", DNS_T_A, DNS_SERVFAIL, {0}, {0} },
	{ "fail.example", DNS_T_TXT, DNS_SERVFAIL, {0}, {0} },
	{ "slow.example", DNS_T_TXT, DNS_TIMEOUT, {0}, {0} },
	{ "slow.example", DNS_T_A, DNS_OK, { "192.0.2.9" }, {0} },
	{ "ent.example", DNS_T_A, DNS_NODATA, {0}, {0} },
	{ "x.ent.example", DNS_T_A, DNS_OK, { "192.0.2.3" }, {0} },
	{ "badmx.example", DNS_T_MX, DNS_MALFORMED, {0}, {0} },
	{ "raw.example", DNS_T_A, DNS_OK, { "192.0.2.5" }, {0} },
	{ "raw.example", DNS_T_SPF, DNS_OK, { "ab" }, {0} },
	{ "bad..example", DNS_T_A, DNS_BADNAME, {0}, {0} },
	{ "", DNS_T_A, DNS_BADNAME, {0}, {0} },
};

static void
static_semantics(void **state)
{
	struct dns *d = dns_new_static(table, ARRAY_LEN(table));

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < ARRAY_LEN(qcases); i++) {
		const struct qcase *c = &qcases[i];
		struct dns_result res;
		size_t n = 0;

		while (n < 3 && c->text[n] != NULL)
			n++;
		print_message("# %s/%u\n", c->name, c->type);
		assert_int_equal(dns_query(d, c->name, c->type, &res),
		    c->status);
		assert_int_equal(res.status, c->status);
		assert_int_equal(res.count, c->status == DNS_OK ? n : 0);
		for (size_t k = 0; k < res.count; k++) {
			assert_string_equal(res.rr[k].text, c->text[k]);
			assert_int_equal(res.rr[k].textlen,
			    strlen(c->text[k]));
			assert_int_equal(res.rr[k].type, c->type);
			assert_int_equal(res.rr[k].ttl, 300);
			assert_non_null(res.rr[k].rdata);
			if (c->type == DNS_T_MX)
				assert_int_equal(res.rr[k].pref, c->pref[k]);
		}
		dns_result_free(&res);
		assert_null(res.rr);
	}
	dns_free(d);
}

/* rdata in wire form is filled, so code reading rdata works alike */
static void
static_rdata_wire(void **state)
{
	static const struct dns_static_rr t[] = {
		{ "a.example", DNS_T_A, "192.0.2.1", DNS_OK },
		{ "a.example", DNS_T_MX, "0 .", DNS_OK },
		{ "a.example", DNS_T_TXT, "\"ab\" \"c\"", DNS_OK },
		{ "a.example", DNS_T_PTR, "B.ex", DNS_OK },
		{ "nul.example", DNS_T_TXT, "\"a\\000b\"", DNS_OK },
	};
	static const unsigned char mx[] = { 0, 0, 0 };
	static const unsigned char txt[] = { 2, 'a', 'b', 1, 'c' };
	static const unsigned char ptr[] = { 1, 'B', 2, 'e', 'x', 0 };
	static const unsigned char a[] = { 192, 0, 2, 1 };
	struct dns *d = dns_new_static(t, ARRAY_LEN(t));
	struct dns_result res;

	(void)state;
	assert_non_null(d);
	assert_int_equal(dns_query(d, "a.example", DNS_T_A, &res), DNS_OK);
	assert_int_equal(res.rr[0].rdlen, 4);
	assert_memory_equal(res.rr[0].rdata, a, 4);
	dns_result_free(&res);
	assert_int_equal(dns_query(d, "a.example", DNS_T_MX, &res), DNS_OK);
	assert_int_equal(res.rr[0].rdlen, sizeof(mx));
	assert_memory_equal(res.rr[0].rdata, mx, sizeof(mx));
	dns_result_free(&res);
	assert_int_equal(dns_query(d, "a.example", DNS_T_TXT, &res), DNS_OK);
	assert_int_equal(res.rr[0].rdlen, sizeof(txt));
	assert_memory_equal(res.rr[0].rdata, txt, sizeof(txt));
	assert_string_equal(res.rr[0].text, "abc");
	dns_result_free(&res);
	assert_int_equal(dns_query(d, "a.example", DNS_T_PTR, &res), DNS_OK);
	assert_int_equal(res.rr[0].rdlen, sizeof(ptr));
	assert_memory_equal(res.rr[0].rdata, ptr, sizeof(ptr));
	assert_string_equal(res.rr[0].text, "b.ex");
	dns_result_free(&res);
	/* a NUL inside a TXT string is kept, textlen counts it */
	assert_int_equal(dns_query(d, "nul.example", DNS_T_TXT, &res), DNS_OK);
	assert_int_equal(res.rr[0].textlen, 3);
	assert_memory_equal(res.rr[0].text, "a\0b", 4);
	dns_result_free(&res);
	dns_free(d);
}

/* invalid entries are refused at creation */
static void
static_bad_entries(void **state)
{
	static const struct dns_static_rr bad[][1] = {
		{ { "a.example", DNS_T_A, "192.0.2.256", DNS_OK } },
		{ { "a.example", DNS_T_A, "2001:db8::1", DNS_OK } },
		{ { "a.example", DNS_T_AAAA, "192.0.2.1", DNS_OK } },
		{ { "a.example", DNS_T_MX, "mx.example", DNS_OK } },
		{ { "a.example", DNS_T_MX, "70000 mx.example", DNS_OK } },
		{ { "a.example", DNS_T_PTR, "a..b", DNS_OK } },
		{ { "a.example", DNS_T_TXT, "\"unterminated", DNS_OK } },
		{ { "a.example", DNS_T_TXT, NULL, DNS_OK } },
		{ { "a..example", DNS_T_A, "192.0.2.1", DNS_OK } },
		{ { "a.example", 99, "\\# 3 0102", DNS_OK } },
		{ { "a.example", 42, "text", DNS_OK } },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		print_message("# bad entry %zu\n", i);
		assert_null(dns_new_static(bad[i], 1));
	}
	/* an empty table answers NXDOMAIN */
	{
		struct dns *d = dns_new_static(NULL, 0);
		struct dns_result res;

		assert_non_null(d);
		assert_int_equal(dns_query(d, "a.example", DNS_T_A, &res),
		    DNS_NXDOMAIN);
		dns_result_free(&res);
		dns_free(d);
	}
}

/* a static TXT of more than 255 octets is cut into strings */
static void
static_long_txt(void **state)
{
	char data[700];
	struct dns_static_rr t[1] = { { "l.example", DNS_T_TXT, data, 0 } };
	struct dns *d;
	struct dns_result res;

	(void)state;
	memset(data, 'x', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	d = dns_new_static(t, 1);
	assert_non_null(d);
	assert_int_equal(dns_query(d, "l.example", DNS_T_TXT, &res), DNS_OK);
	assert_int_equal(res.rr[0].textlen, sizeof(data) - 1);
	assert_int_equal(res.rr[0].rdlen, sizeof(data) - 1 + 3);
	assert_int_equal(res.rr[0].rdata[0], 255);
	assert_int_equal(res.rr[0].rdata[256], 255);
	assert_int_equal(res.rr[0].rdata[512], sizeof(data) - 1 - 510);
	dns_result_free(&res);
	dns_free(d);
}

/* more than DNS_MAX_RR records: DNS_MALFORMED, nothing kept */
static void
static_too_many(void **state)
{
	size_t n = DNS_MAX_RR + 1;
	struct dns_static_rr *t = xcalloc(n, sizeof(*t));
	struct dns *d;
	struct dns_result res;

	(void)state;
	for (size_t i = 0; i < n; i++)
		t[i] = (struct dns_static_rr){ "m.example", DNS_T_TXT, "r",
		    DNS_OK };
	d = dns_new_static(t, n);
	assert_non_null(d);
	assert_int_equal(dns_query(d, "m.example", DNS_T_TXT, &res),
	    DNS_MALFORMED);
	assert_int_equal(res.count, 0);
	assert_null(res.rr);
	dns_result_free(&res);
	dns_free(d);
	d = dns_new_static(t, n - 1);
	assert_int_equal(dns_query(d, "m.example", DNS_T_TXT, &res), DNS_OK);
	assert_int_equal(res.count, DNS_MAX_RR);
	dns_result_free(&res);
	dns_free(d);
	free(t);
}

struct rdcase {
	uint16_t		 type;
	const char		*rdata;
	size_t			 len;
	int			 ok;
	const char		*text;
	int			 pref;
};

#define RD(s)	s, sizeof(s) - 1
static const struct rdcase rdcases[] = {
	{ DNS_T_A, RD("\xc0\x00\x02\x01"), 1, "192.0.2.1", 0 },
	{ DNS_T_A, RD("\xc0\x00\x02"), 0, NULL, 0 },
	{ DNS_T_A, RD("\xc0\x00\x02\x01\x00"), 0, NULL, 0 },
	{ DNS_T_AAAA, RD("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"), 1,
	    "2001:db8::1", 0 },
	{ DNS_T_AAAA, RD("\x20\x01\x0d\xb8"), 0, NULL, 0 },
	{ DNS_T_PTR, RD("\x04Host\x07" "Example\x00"), 1, "host.example", 0 },
	{ DNS_T_PTR, RD("\x00"), 1, "", 0 },
	{ DNS_T_PTR, RD("\x04host"), 0, NULL, 0 },		/* no root */
	{ DNS_T_PTR, RD("\x05host\x00"), 0, NULL, 0 },		/* overrun */
	{ DNS_T_PTR, RD("\xc0\x0c"), 0, NULL, 0 },		/* pointer */
	{ DNS_T_PTR, RD("\x01" "a\x00\x00"), 0, NULL, 0 },	/* trailing */
	{ DNS_T_PTR, RD("\x03" "a.b\x01\\\x00"), 1, "a\\046b.\\092", 0 },
	{ DNS_T_CNAME, RD("\x01" "a\x00"), 1, "a", 0 },
	{ DNS_T_NS, RD("\x02ns\x02" "EX\x00"), 1, "ns.ex", 0 },
	{ DNS_T_MX, RD("\x00\x0a\x02mx\x00"), 1, "mx", 10 },
	{ DNS_T_MX, RD("\xff\xff\x00"), 1, "", 65535 },
	{ DNS_T_MX, RD("\x00\x0a"), 0, NULL, 0 },
	{ DNS_T_MX, RD("\x00\x0a\x03mx\x00"), 0, NULL, 0 },
	{ DNS_T_TXT, RD("\x03" "abc\x02" "de"), 1, "abcde", 0 },
	{ DNS_T_TXT, RD("\x00"), 1, "", 0 },
	{ DNS_T_TXT, RD("\x04" "abc"), 0, NULL, 0 },
	{ DNS_T_TXT, RD(""), 0, NULL, 0 },
	{ DNS_T_SPF, RD("\x02v="), 1, "v=", 0 },
	{ 257, RD("\x00\x05issue"), 1, "", 0 },		/* CAA: no text */
};

static void
rdata_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rdcases); i++) {
		const struct rdcase *c = &rdcases[i];
		struct dns_rr rr;
		int r;

		print_message("# rdata case %zu\n", i);
		memset(&rr, 0xa5, sizeof(rr));
		r = dns_rr_decode(c->type, (const unsigned char *)c->rdata,
		    c->len, &rr);
		assert_int_equal(r, c->ok ? 0 : -1);
		if (!c->ok) {
			assert_null(rr.text);
			continue;
		}
		assert_string_equal(rr.text, c->text);
		assert_int_equal(rr.pref, c->pref);
		free(rr.text);
	}
	/* a name of more than 255 octets on the wire is malformed */
	{
		unsigned char big[320];
		struct dns_rr rr;
		size_t o = 0;

		for (int l = 0; l < 5; l++) {
			big[o++] = 60;
			memset(big + o, 'a', 60);
			o += 60;
		}
		big[o++] = 0;
		assert_int_equal(dns_rr_decode(DNS_T_PTR, big, o, &rr), -1);
	}
}

static void
valid_names(void **state)
{
	char l63[64], l64[65], n253[254], n254[255], n253dot[255];
	struct { const char *name; int ok; } c[] = {
		{ "example.com", 1 }, { "example.com.", 1 }, { "a", 1 },
		{ "_dmarc.example.com", 1 }, { "xn--bcher-kva.example", 1 },
		{ "", 0 }, { ".", 0 }, { "a..b", 0 }, { ".a", 0 },
		{ "a.b..", 0 }, { "a b.c", 1 }, { "a\tb", 0 }, { "a\nb", 0 },
		{ "a\x7f", 0 }, { "a\\.b", 1 }, { l63, 1 }, { l64, 0 },
		{ n253, 1 }, { n253dot, 1 }, { n254, 0 },
	};

	(void)state;
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	/* 253 = 3 * (63 + 1) + 61 */
	for (int i = 0; i < 253; i++)
		n253[i] = (i % 64 == 63) ? '.' : 'b';
	n253[253] = '\0';
	memcpy(n253dot, n253, 253);
	memcpy(n253dot + 253, ".", 2);
	memcpy(n254, n253, 253);
	memcpy(n254 + 253, "c", 2);
	assert_int_equal(strlen(n253), 253);
	for (size_t i = 0; i < ARRAY_LEN(c); i++) {
		print_message("# name %zu\n", i);
		assert_int_equal(dns_valid_name(c[i].name) != 0, c[i].ok);
	}
	assert_int_equal(dns_valid_name(NULL), 0);
}

static void
reverse_names(void **state)
{
	struct { const char *ip; const char *rev; } c[] = {
		{ "127.0.0.5", "5.0.0.127.in-addr.arpa" },
		{ "192.0.2.10", "10.2.0.192.in-addr.arpa" },
		{ "::ffff:192.0.2.1", "1.2.0.192.in-addr.arpa" },
		{ "2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		    "0.8.b.d.0.1.0.0.2.ip6.arpa" },
		{ "::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		    "0.0.0.0.0.0.ip6.arpa" },
	};
	const char *bad[] = { "", "1.2.3", "1.2.3.256", "example.com",
	    "[::1]", "2001:db8::1::2", "1.2.3.4 " };
	char out[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(c); i++) {
		assert_int_equal(dns_reverse_name(c[i].ip, out, sizeof(out)),
		    0);
		assert_string_equal(out, c[i].rev);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_int_equal(dns_reverse_name(bad[i], out, sizeof(out)),
		    -1);
	/* too small a buffer is an error, not an overflow */
	assert_int_equal(dns_reverse_name("192.0.2.10", out, 10), -1);
	assert_int_equal(dns_reverse_name("2001:db8::1", out, 72), -1);
	assert_int_equal(dns_reverse_name("2001:db8::1", out, 73), 0);
}

static void
status_names(void **state)
{
	(void)state;
	assert_string_equal(dns_status_name(DNS_OK), "ok");
	assert_string_equal(dns_status_name(DNS_NODATA), "nodata");
	assert_string_equal(dns_status_name(DNS_NXDOMAIN), "nxdomain");
	assert_string_equal(dns_status_name(DNS_SERVFAIL), "servfail");
	assert_string_equal(dns_status_name(DNS_TIMEOUT), "timeout");
	assert_string_equal(dns_status_name(DNS_BADNAME), "badname");
	assert_string_equal(dns_status_name(DNS_MALFORMED), "malformed");
}

/* dns_new: server forms accepted and refused, timeout, config file */
static void
server_options(void **state)
{
	const char *good[] = { "127.0.0.1", "127.0.0.1:5353", "192.0.2.1:53",
	    "::1", "[::1]:5353", "[2001:db8::1]", "2001:db8::53" };
	const char *bad[] = { "localhost", "127.0.0.1:", "127.0.0.1:0",
	    "127.0.0.1:65536", "127.0.0.1:53x", "[::1", "[::1]x", "[::1]:",
	    "1.2.3.4.5", "[127.0.0.1", "::1:53:x", "127.0.0.1:-1" };
	char err[256];
	struct dns_opts o = { .timeout_ms = 1000 };
	struct dns *d;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		print_message("# good server %s\n", good[i]);
		o.server = good[i];
		d = dns_new(&o, err, sizeof(err));
		assert_non_null(d);
		dns_free(d);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		print_message("# bad server %s\n", bad[i]);
		err[0] = '\0';
		o.server = bad[i];
		assert_null(dns_new(&o, err, sizeof(err)));
		assert_non_null(strstr(err, bad[i]));
	}
	o.server = "127.0.0.1";
	o.timeout_ms = 0;
	err[0] = '\0';
	assert_null(dns_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "timeout"));
	o.timeout_ms = 1000;
	o.unbound_conf = "/nonexistent/unbound.conf";
	err[0] = '\0';
	assert_null(dns_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/unbound.conf"));
}

/* dns_new: a config file is applied; a bad one is refused */
static void
unbound_conf(void **state)
{
	char path[] = "/tmp/dns_test.XXXXXX";
	char err[256];
	struct dns_opts o = { .server = "127.0.0.1:5", .timeout_ms = 1000,
	    .unbound_conf = path };
	struct dns *d;
	struct dns_result res;
	int fd;
	FILE *f;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	/* answered locally: no packet leaves */
	fputs("server:\n\tlocal-data: \"cfg.example. 60 IN A 192.0.2.7\"\n",
	    f);
	fclose(f);
	d = dns_new(&o, err, sizeof(err));
	assert_non_null(d);
	assert_int_equal(dns_query(d, "cfg.example", DNS_T_A, &res), DNS_OK);
	assert_int_equal(res.count, 1);
	assert_string_equal(res.rr[0].text, "192.0.2.7");
	dns_result_free(&res);
	/* never sent */
	assert_int_equal(dns_query(d, "a..b", DNS_T_A, &res), DNS_BADNAME);
	dns_result_free(&res);
	dns_free(d);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("server:\n\tno-such-option: yes\n", f);
	fclose(f);
	err[0] = '\0';
	assert_null(dns_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(static_semantics),
		cmocka_unit_test(static_rdata_wire),
		cmocka_unit_test(static_bad_entries),
		cmocka_unit_test(static_long_txt),
		cmocka_unit_test(static_too_many),
		cmocka_unit_test(rdata_decode),
		cmocka_unit_test(valid_names),
		cmocka_unit_test(reverse_names),
		cmocka_unit_test(status_names),
		cmocka_unit_test(server_options),
		cmocka_unit_test(unbound_conf),
	};

	log_init("dns_test", 1, LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
