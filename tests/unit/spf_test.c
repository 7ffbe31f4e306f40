/*
 * spf_test.c - unit tests of policy/spf.c against dns_new_static tables:
 * the pure helpers, every result, include/redirect, the RFC 7208 limits,
 * loopback / IPv6 / IPv4-mapped clients, malformed names, the txn entry
 * points with their symbols, and several threads evaluating at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <spf2/spf.h>

#include "dns.h"
#include "spf.h"
#include "txn.h"
#include "util.h"

/* ---- the two txn functions the check calls, kept local so the test
 * links only policy/spf.c and what it needs ---- */

void
txn_symbol(struct txn *t, const char *name, const char *detail)
{
	if (txn_has_symbol(t, name))
		return;
	t->sym = xrealloc(t->sym, (t->nsym + 1) * sizeof(*t->sym));
	memset(&t->sym[t->nsym], 0, sizeof(t->sym[0]));
	t->sym[t->nsym].name = xstrdup(name);
	t->sym[t->nsym].detail = detail != NULL ? xstrdup(detail) : NULL;
	t->nsym++;
}

int
txn_has_symbol(const struct txn *t, const char *name)
{
	for (size_t i = 0; i < t->nsym; i++)
		if (strcmp(t->sym[i].name, name) == 0)
			return 1;
	return 0;
}

static void
spf_free_fields(struct txn_spf *s)
{
	free(s->domain);
	free(s->identity);
	free(s->sender);
	free(s->reason);
}

static void
txn_clear(struct txn *t)
{
	for (size_t i = 0; i < t->nsym; i++) {
		free(t->sym[i].name);
		free(t->sym[i].detail);
	}
	free(t->sym);
	spf_free_fields(&t->spf);
	spf_free_fields(&t->spf_helo);
	memset(t, 0, sizeof(*t));
}

/* ---- the DNS data ---- */

#define TXT(n, d)	{ n, DNS_T_TXT, d, DNS_OK }
#define A(n, d)		{ n, DNS_T_A, d, DNS_OK }
#define AAAA(n, d)	{ n, DNS_T_AAAA, d, DNS_OK }
#define MX(n, d)	{ n, DNS_T_MX, d, DNS_OK }
#define ERR(n, t, s)	{ n, t, NULL, s }

static const struct dns_static_rr zone[] = {
	TXT("pass.example", "v=spf1 ip4:192.0.2.0/24 -all"),
	TXT("fail.example", "v=spf1 -all"),
	TXT("softfail.example", "v=spf1 ~all"),
	TXT("neutral.example", "v=spf1 ?all"),
	TXT("default.example", "v=spf1 ip4:203.0.113.1"),
	A("none.example", "192.0.2.1"),
	TXT("other.example", "google-site-verification=abc"),
	TXT("other.example", "v=spf10 -all"),
	TXT("upper.example", "V=SPF1 ip4:192.0.2.1 -all"),
	TXT("syntax.example", "v=spf1 ip4:300.1.1.1 -all"),
	TXT("unknown.example", "v=spf1 frobnicate:x.example -all"),
	TXT("multi.example", "v=spf1 -all"),
	TXT("multi.example", "v=spf1 +all"),
	TXT("bin.example", "\"v=spf1 ip4:192.0.2.1 \\200all\""),
	TXT("ctl.example", "\"v=spf1 ip4:192.0.2.1\\009-all\""),
	TXT("inc.example", "v=spf1 include:pass.example -all"),
	TXT("incnone.example", "v=spf1 include:none.example -all"),
	TXT("incfail.example", "v=spf1 include:fail.example ip4:198.51.100.0/24 -all"),
	TXT("redir.example", "v=spf1 redirect=pass.example"),
	TXT("redirnone.example", "v=spf1 redirect=none.example"),
	TXT("mx.example", "v=spf1 mx -all"),
	MX("mx.example", "10 mail.mx.example"),
	MX("mx.example", "20 mail2.mx.example"),
	A("mail.mx.example", "198.51.100.7"),
	A("mail2.mx.example", "192.0.2.25"),
	TXT("a.example", "v=spf1 a -all"),
	A("a.example", "192.0.2.30"),
	AAAA("a.example", "2001:db8::30"),
	TXT("v6.example", "v=spf1 ip6:2001:db8::/32 -all"),
	TXT("loop.example", "v=spf1 ip4:127.0.0.0/8 -all"),
	/* RFC 7208 §4.6.4: 10 DNS-querying terms shared across includes. */
	TXT("lim1.example", "v=spf1 a:h1.example a:h2.example a:h3.example "
	    "a:h4.example include:lim2.example -all"),
	TXT("lim2.example", "v=spf1 a:h5.example a:h6.example a:h7.example "
	    "a:h8.example include:lim3.example -all"),
	TXT("lim3.example", "v=spf1 ip4:192.0.2.0/24 -all"),
	TXT("over1.example", "v=spf1 a:h1.example a:h2.example a:h3.example "
	    "a:h4.example include:over2.example -all"),
	TXT("over2.example", "v=spf1 a:h5.example a:h6.example a:h7.example "
	    "a:h8.example include:over3.example -all"),
	TXT("over3.example", "v=spf1 a:h9.example ip4:192.0.2.0/24 -all"),
	TXT("mxlim.example", "v=spf1 a:h1.example a:h2.example a:h3.example "
	    "a:h4.example a:h5.example a:h6.example a:h7.example "
	    "a:h8.example mx:mx.example a:h9.example ip4:192.0.2.0/24 -all"),
	A("h1.example", "198.51.100.1"), A("h2.example", "198.51.100.2"),
	A("h3.example", "198.51.100.3"), A("h4.example", "198.51.100.4"),
	A("h5.example", "198.51.100.5"), A("h6.example", "198.51.100.6"),
	A("h7.example", "198.51.100.7"), A("h8.example", "198.51.100.8"),
	A("h9.example", "198.51.100.9"),
	/* void lookups: two allowed, the third is a permerror */
	TXT("void2.example", "v=spf1 a:nx1.example a:nx2.example "
	    "ip4:192.0.2.0/24 -all"),
	TXT("void3.example", "v=spf1 a:nx1.example a:nx2.example "
	    "a:nx3.example ip4:192.0.2.0/24 -all"),
	/* DNS failures */
	ERR("tmp.example", DNS_T_TXT, DNS_TIMEOUT),
	ERR("sfail.example", DNS_T_TXT, DNS_SERVFAIL),
	TXT("tmpa.example", "v=spf1 a:slow.example -all"),
	ERR("slow.example", 0, DNS_TIMEOUT),
	TXT("tmpinc.example", "v=spf1 include:tmp.example -all"),
	/* explanation with spaces and a macro */
	TXT("expl.example", "v=spf1 -all exp=why.expl.example"),
	TXT("why.expl.example", "%{i} is not one of our servers"),
	/* a single-label name with a record: must never be asked */
	TXT("localhost", "v=spf1 +all"),
	TXT("helo.example", "v=spf1 ip4:192.0.2.1 -all"),
	A("helo.example", "192.0.2.1"),
	/* CIDR length 0 (libspf2 refuses to compile it; we rewrite) */
	TXT("c0.example", "v=spf1 ip4:10.0.0.0/0 -all"),
	TXT("a0.example", "v=spf1 a/0 -all"),
	A("a0.example", "10.1.1.1"),
	TXT("a60.example", "v=spf1 a//0 -all"),
	AAAA("a60.example", "2001:db8::99"),
	TXT("mx0.example", "v=spf1 mx:nxmx.example/0 -all"),
	TXT("mx60.example", "v=spf1 mx//0 -all"),
	MX("mx60.example", "10 mail.mx60.example"),
	AAAA("mail.mx60.example", "2001:db8::5"),
	/* valid records libspf2 alone gets wrong */
	TXT("mod.example", "v=spf1 moo.cow=x ip4:192.0.2.1 -all"),
	TXT("redir2.example", "v=spf1 redirect=fail.example ip4:192.0.2.1"),
	TXT("redir3.example", "v=spf1 redirect=pass.example ~all"),
	/* invalid records libspf2 alone accepts */
	TXT("badtop.example", "v=spf1 a:foo-bar -all"),
	TXT("twice.example", "v=spf1 -all exp=a.example exp=b.example"),
	TXT("badmacro.example", "v=spf1 exists:%(ir).sbl.example ?all"),
	/* more than 10 MX names */
	TXT("mx11.example", "v=spf1 mx -all"),
	MX("mx11.example", "1 m1.example"), MX("mx11.example", "2 m2.example"),
	MX("mx11.example", "3 m3.example"), MX("mx11.example", "4 m4.example"),
	MX("mx11.example", "5 m5.example"), MX("mx11.example", "6 m6.example"),
	MX("mx11.example", "7 m7.example"), MX("mx11.example", "8 m8.example"),
	MX("mx11.example", "9 m9.example"), MX("mx11.example", "10 m10.example"),
	MX("mx11.example", "11 m11.example"),
	/* a DNS error on a PTR name's address skips that name */
	TXT("ptr.example", "v=spf1 ptr -all"),
	{ "77.2.0.192.in-addr.arpa", DNS_T_PTR, "bad.ptr.example", DNS_OK },
	{ "77.2.0.192.in-addr.arpa", DNS_T_PTR, "good.ptr.example", DNS_OK },
	ERR("bad.ptr.example", 0, DNS_SERVFAIL),
	A("good.ptr.example", "192.0.2.77"),
	/* explanation text that is not ASCII: the default is used */
	TXT("badexp.example", "v=spf1 -all exp=why.badexp.example"),
	TXT("why.badexp.example", "\xef\xbb\xbf" "Explanation"),
};

static struct dns *dns;
static struct chk_spf *spf;

static int
setup(void **state)
{
	char err[256];

	(void)state;
	dns = dns_new_static(zone, ARRAY_LEN(zone));
	if (dns == NULL)
		return -1;
	spf = chk_spf_new(dns, "mx.mxw.test", err, sizeof(err));
	return spf == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	chk_spf_free(spf);
	dns_free(dns);
	return 0;
}

/* ---- pure helpers ---- */

static void
test_domain_ok(void **state)
{
	static const struct { const char *d; int ok; } cases[] = {
		{ "example.com", 1 },
		{ "example.com.", 1 },
		{ "a.b.c.example", 1 },
		{ "localhost", 0 },
		{ "localhost.", 0 },
		{ "", 0 },
		{ "a..example", 0 },
		{ ".example.com", 0 },
		{ "A123456789012345678901234567890123456789012345678901234567890123.example", 0 },
		{ "A12345678901234567890123456789012345678901234567890123456789012.example", 1 },
		{ "bad name.example", 0 },
	};

	(void)state;
	assert_false(chk_spf_domain_ok(NULL));
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		if (chk_spf_domain_ok(cases[i].d) != cases[i].ok)
			fail_msg("domain_ok(\"%s\") != %d", cases[i].d,
			    cases[i].ok);
	}
}

static void
test_is_record(void **state)
{
	static const struct { const char *t; int ok; } cases[] = {
		{ "v=spf1", 1 },
		{ "v=spf1 -all", 1 },
		{ "V=SpF1 -all", 1 },
		{ "v=spf10 -all", 0 },
		{ "v=spf1-all", 0 },
		{ "v=spf", 0 },
		{ " v=spf1 -all", 0 },
		{ "spf2.0/pra -all", 0 },
		{ "", 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		if (chk_spf_is_record(cases[i].t, strlen(cases[i].t)) !=
		    cases[i].ok)
			fail_msg("is_record(\"%s\") != %d", cases[i].t,
			    cases[i].ok);
}

static void
test_record_check(void **state)
{
	char why[128];
	const char nul[] = "v=spf1 a\0 -all";

	(void)state;
	assert_int_equal(chk_spf_record_check("v=spf1 -all", 11, why,
	    sizeof(why)), 0);
	assert_int_equal(chk_spf_record_check(nul, sizeof(nul) - 1, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "NUL"));
	assert_int_equal(chk_spf_record_check("v=spf1 \x01-all", 12, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "control"));
	assert_int_equal(chk_spf_record_check("v=spf1 \xc3\xa9 -all", 14, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "non-ASCII"));
}

static void
test_map_result(void **state)
{
	static const struct { int r, e; unsigned f; enum chk_res want; } c[] = {
		{ SPF_RESULT_PASS, 0, 0, CHK_PASS },
		{ SPF_RESULT_FAIL, 0, 0, CHK_FAIL },
		{ SPF_RESULT_SOFTFAIL, 0, 0, CHK_SOFTFAIL },
		{ SPF_RESULT_NEUTRAL, 0, 0, CHK_NEUTRAL },
		{ SPF_RESULT_NONE, SPF_E_NOT_SPF, 0, CHK_NONE },
		{ SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR, 0, CHK_TEMPERROR },
		{ SPF_RESULT_PERMERROR, SPF_E_SYNTAX, 0, CHK_PERMERROR },
		{ SPF_RESULT_INVALID, SPF_E_DNS_ERROR, 0, CHK_TEMPERROR },
		{ SPF_RESULT_INVALID, SPF_E_NOT_SPF, 0, CHK_PERMERROR },
		{ SPF_RESULT_INVALID, SPF_E_SYNTAX, 0, CHK_PERMERROR },
		{ SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR, CHK_SPF_F_LIMIT,
		    CHK_PERMERROR },
		{ SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR, CHK_SPF_F_VOID,
		    CHK_PERMERROR },
		{ SPF_RESULT_PASS, 0, CHK_SPF_F_BUDGET, CHK_TEMPERROR },
		{ SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
		    CHK_SPF_F_BUDGET | CHK_SPF_F_LIMIT, CHK_PERMERROR },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(c); i++)
		if (chk_spf_map_result(c[i].r, c[i].e, c[i].f) != c[i].want)
			fail_msg("case %zu: map(%d, %d, %#x) = %d, want %d", i,
			    c[i].r, c[i].e, c[i].f,
			    chk_spf_map_result(c[i].r, c[i].e, c[i].f),
			    c[i].want);
}

/* ---- evaluations ---- */

struct spf_case {
	const char	*name;
	const char	*ip;
	const char	*sender;	/* MAIL FROM; HELO identity if helo_id */
	int		 helo_id;
	enum chk_res	 want;
	const char	*reason;	/* substring of the reason, or NULL */
};

static const struct spf_case cases[] = {
	{ "pass", "192.0.2.1", "u@pass.example", 0, CHK_PASS,
	    "designates 192.0.2.1" },
	{ "fail", "198.51.100.1", "u@pass.example", 0, CHK_FAIL,
	    "does not designate" },
	{ "fail -all", "192.0.2.1", "u@fail.example", 0, CHK_FAIL, NULL },
	{ "softfail", "192.0.2.1", "u@softfail.example", 0, CHK_SOFTFAIL, NULL },
	{ "neutral", "192.0.2.1", "u@neutral.example", 0, CHK_NEUTRAL, NULL },
	{ "default neutral", "192.0.2.1", "u@default.example", 0,
	    CHK_NEUTRAL, NULL },
	{ "none: no TXT", "192.0.2.1", "u@none.example", 0, CHK_NONE, NULL },
	{ "none: no v=spf1", "192.0.2.1", "u@other.example", 0, CHK_NONE,
	    NULL },
	{ "none: nxdomain", "192.0.2.1", "u@nx.example", 0, CHK_NONE, NULL },
	{ "upper-case version", "192.0.2.1", "u@upper.example", 0, CHK_PASS,
	    NULL },
	{ "permerror: bad ip4", "192.0.2.1", "u@syntax.example", 0,
	    CHK_PERMERROR, NULL },
	{ "permerror: unknown mechanism", "192.0.2.1", "u@unknown.example", 0,
	    CHK_PERMERROR, NULL },
	{ "permerror: two records", "192.0.2.1", "u@multi.example", 0,
	    CHK_PERMERROR, NULL },
	{ "permerror: non-ASCII", "192.0.2.1", "u@bin.example", 0,
	    CHK_PERMERROR, NULL },
	{ "permerror: control char", "192.0.2.1", "u@ctl.example", 0,
	    CHK_PERMERROR, NULL },
	{ "include pass", "192.0.2.1", "u@inc.example", 0, CHK_PASS, NULL },
	{ "include no match", "198.51.100.1", "u@inc.example", 0, CHK_FAIL,
	    NULL },
	{ "include of none", "192.0.2.1", "u@incnone.example", 0,
	    CHK_PERMERROR, NULL },
	{ "include fail goes on", "198.51.100.9", "u@incfail.example", 0,
	    CHK_PASS, NULL },
	{ "redirect pass", "192.0.2.1", "u@redir.example", 0, CHK_PASS, NULL },
	{ "redirect fail", "198.51.100.1", "u@redir.example", 0, CHK_FAIL,
	    NULL },
	{ "redirect to none", "192.0.2.1", "u@redirnone.example", 0,
	    CHK_PERMERROR, NULL },
	{ "mx second host", "192.0.2.25", "u@mx.example", 0, CHK_PASS, NULL },
	{ "mx no match", "192.0.2.26", "u@mx.example", 0, CHK_FAIL, NULL },
	{ "a ipv4", "192.0.2.30", "u@a.example", 0, CHK_PASS, NULL },
	{ "a ipv6", "2001:db8::30", "u@a.example", 0, CHK_PASS, NULL },
	{ "a ipv6 no match", "2001:db8::31", "u@a.example", 0, CHK_FAIL, NULL },
	{ "ipv6 pass", "2001:db8:1::25", "u@v6.example", 0, CHK_PASS, NULL },
	{ "ipv6 fail", "2001:db9::1", "u@v6.example", 0, CHK_FAIL, NULL },
	{ "ipv4 client vs ip6", "192.0.2.1", "u@v6.example", 0, CHK_FAIL, NULL },
	{ "ipv4-mapped pass", "::ffff:192.0.2.1", "u@pass.example", 0,
	    CHK_PASS, NULL },
	{ "ipv4-mapped fail", "::ffff:198.51.100.1", "u@pass.example", 0,
	    CHK_FAIL, NULL },
	{ "ipv4-mapped vs ip6", "::ffff:192.0.2.1", "u@v6.example", 0,
	    CHK_FAIL, NULL },
	{ "loopback -all", "127.0.0.5", "u@fail.example", 0, CHK_FAIL, NULL },
	{ "loopback not listed", "127.0.0.5", "u@pass.example", 0, CHK_FAIL,
	    NULL },
	{ "loopback listed", "127.0.0.5", "u@loop.example", 0, CHK_PASS, NULL },
	{ "ipv6 loopback -all", "::1", "u@fail.example", 0, CHK_FAIL, NULL },
	{ "10 terms through includes", "192.0.2.1", "u@lim1.example", 0,
	    CHK_PASS, NULL },
	{ "11 terms through includes", "192.0.2.1", "u@over1.example", 0,
	    CHK_PERMERROR, "more than 10" },
	{ "mx host lookups are not terms", "192.0.2.1", "u@mxlim.example", 0,
	    CHK_PASS, NULL },
	{ "two void lookups", "192.0.2.1", "u@void2.example", 0, CHK_PASS,
	    NULL },
	{ "three void lookups", "192.0.2.1", "u@void3.example", 0,
	    CHK_PERMERROR, "void" },
	{ "temperror: TXT timeout", "192.0.2.1", "u@tmp.example", 0,
	    CHK_TEMPERROR, "timeout" },
	{ "temperror: TXT servfail", "192.0.2.1", "u@sfail.example", 0,
	    CHK_TEMPERROR, "servfail" },
	{ "temperror: a: timeout", "192.0.2.1", "u@tmpa.example", 0,
	    CHK_TEMPERROR, "slow.example" },
	{ "temperror: include timeout", "192.0.2.1", "u@tmpinc.example", 0,
	    CHK_TEMPERROR, NULL },
	{ "exp with spaces", "192.0.2.1", "u@expl.example", 0, CHK_FAIL, NULL },
	{ "malformed: single label", "192.0.2.1", "u@localhost", 0, CHK_NONE,
	    "malformed" },
	{ "malformed: empty label", "192.0.2.1", "u@fail..example", 0,
	    CHK_NONE, "malformed" },
	{ "malformed: long label", "192.0.2.1",
	    "u@A123456789012345678901234567890123456789012345678901234567890123.fail.example",
	    0, CHK_NONE, "malformed" },
	{ "malformed: no domain", "192.0.2.1", "u@", 0, CHK_NONE, NULL },
	{ "bad client address", "unknown", "u@fail.example", 0, CHK_NONE,
	    "client address" },
	{ "helo identity pass", "192.0.2.1", "helo.example", 1, CHK_PASS, NULL },
	{ "ip4 /0", "192.0.2.1", "u@c0.example", 0, CHK_PASS, NULL },
	{ "ip4 /0, ipv6 client", "2001:db8::1", "u@c0.example", 0, CHK_FAIL,
	    NULL },
	{ "a/0", "192.0.2.1", "u@a0.example", 0, CHK_PASS, NULL },
	{ "a/0, ipv6 client", "2001:db8::1", "u@a0.example", 0, CHK_FAIL,
	    NULL },
	{ "a//0", "2001:db8:ffff::1", "u@a60.example", 0, CHK_PASS, NULL },
	{ "a//0, ipv4 client", "192.0.2.1", "u@a60.example", 0, CHK_FAIL,
	    NULL },
	{ "mx/0 nxdomain", "192.0.2.1", "u@mx0.example", 0, CHK_FAIL, NULL },
	{ "mx//0", "2001:db8:1::1", "u@mx60.example", 0, CHK_PASS, NULL },
	{ "mx//0, ipv4-mapped client", "::ffff:192.0.2.1", "u@mx60.example",
	    0, CHK_FAIL, NULL },
	{ "unknown modifier with a dot", "192.0.2.1", "u@mod.example", 0,
	    CHK_PASS, NULL },
	{ "redirect after mechanisms", "192.0.2.1", "u@redir2.example", 0,
	    CHK_PASS, NULL },
	{ "redirect ignored with all", "192.0.2.1", "u@redir3.example", 0,
	    CHK_SOFTFAIL, NULL },
	{ "permerror: bad top label", "192.0.2.1", "u@badtop.example", 0,
	    CHK_PERMERROR, "top label" },
	{ "permerror: exp twice", "192.0.2.1", "u@twice.example", 0,
	    CHK_PERMERROR, "more than once" },
	{ "permerror: bad macro", "192.0.2.1", "u@badmacro.example", 0,
	    CHK_PERMERROR, "macro" },
	{ "permerror: 11 MX names", "192.0.2.1", "u@mx11.example", 0,
	    CHK_PERMERROR, "MX" },
	{ "ptr: DNS error skips a name", "192.0.2.77", "u@ptr.example", 0,
	    CHK_PASS, NULL },
	{ "helo identity fail", "192.0.2.2", "helo.example", 1, CHK_FAIL, NULL },
};

static enum chk_res
run_case(const struct spf_case *c, char *reason, size_t len)
{
	char sender[300];

	if (c->helo_id) {
		(void)str_fmt(sender, sizeof(sender), "postmaster@%s", c->sender);
		return chk_spf_check(spf, c->ip, c->sender, sender, 1, reason,
		    len);
	}
	return chk_spf_check(spf, c->ip, "client.example", c->sender, 0,
	    reason, len);
}

static void
test_cases(void **state)
{
	char reason[512];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const struct spf_case *c = &cases[i];
		enum chk_res r;

		reason[0] = '\0';
		r = run_case(c, reason, sizeof(reason));
		if (r != c->want) {
			print_error("%s: %s from %s: got %s (%s), want %s\n",
			    c->name, c->sender, c->ip, chk_spf_res_suffix(r),
			    reason, chk_spf_res_suffix(c->want));
			bad++;
		} else if (c->reason != NULL && strstr(reason, c->reason) ==
		    NULL) {
			print_error("%s: reason \"%s\" lacks \"%s\"\n", c->name,
			    reason, c->reason);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_explanation(void **state)
{
	static const struct { const char *sender, *ip, *exp; } c[] = {
		{ "u@expl.example", "192.0.2.1",
		    "192.0.2.1 is not one of our servers" },
		{ "u@badexp.example", "192.0.2.1",
		    "192.0.2.1 is not a permitted sender for badexp.example" },
		{ "u@fail.example", "192.0.2.9",
		    "192.0.2.9 is not a permitted sender for fail.example" },
		{ "u@pass.example", "192.0.2.1", "" },
	};
	char reason[256], exp[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(c); i++) {
		(void)str_copy(exp, "junk", sizeof(exp));
		(void)chk_spf_eval(spf, c[i].ip, "client.example", c[i].sender,
		    0, reason, sizeof(reason), exp, sizeof(exp));
		if (strcmp(exp, c[i].exp) != 0)
			fail_msg("%s: explanation \"%s\", want \"%s\"",
			    c[i].sender, exp, c[i].exp);
	}
}

static void
test_limits_configurable(void **state)
{
	char err[128], reason[256];
	struct chk_spf *s2 = chk_spf_new(dns, NULL, err, sizeof(err));

	(void)state;
	assert_non_null(s2);
	chk_spf_set_limits(s2, 0, 0, 3);
	assert_int_equal(chk_spf_check(s2, "192.0.2.1", NULL,
	    "u@void3.example", 0, reason, sizeof(reason)), CHK_PASS);
	chk_spf_set_limits(s2, 0, 9, 0);
	assert_int_equal(chk_spf_check(s2, "192.0.2.1", NULL,
	    "u@lim1.example", 0, reason, sizeof(reason)), CHK_PERMERROR);
	chk_spf_free(s2);
	chk_spf_free(NULL);
	assert_null(chk_spf_new(NULL, NULL, err, sizeof(err)));
}

/* ---- txn entry points ---- */

static void
txn_init(struct txn *t, char *ip, char *helo, char *from, char *domain)
{
	memset(t, 0, sizeof(*t));
	t->client_ip = ip;
	t->helo = helo;
	t->mail_from = from;
	t->mail_domain = domain;
}

static void
test_txn_helo(void **state)
{
	struct txn t;
	char ip[] = "192.0.2.1", ip2[] = "192.0.2.2", helo[] = "helo.example",
	    bare[] = "helo";

	(void)state;
	txn_init(&t, ip, helo, NULL, NULL);
	chk_spf_helo(spf, &t);
	assert_int_equal(t.spf_helo.res, CHK_PASS);
	assert_string_equal(t.spf_helo.identity, "helo");
	assert_string_equal(t.spf_helo.sender, "postmaster@helo.example");
	assert_true(txn_has_symbol(&t, "HELO_SPF_PASS"));
	assert_int_equal(t.nsym, 1);
	txn_clear(&t);

	txn_init(&t, ip2, helo, NULL, NULL);
	chk_spf_helo(spf, &t);
	assert_int_equal(t.spf_helo.res, CHK_FAIL);
	assert_true(txn_has_symbol(&t, "HELO_SPF_FAIL"));
	txn_clear(&t);

	/* not a FQDN: none, no query, no symbol */
	txn_init(&t, ip, bare, NULL, NULL);
	chk_spf_helo(spf, &t);
	assert_int_equal(t.spf_helo.res, CHK_NONE);
	assert_int_equal(t.nsym, 0);
	txn_clear(&t);
}

static void
test_txn_mailfrom(void **state)
{
	struct txn t;
	char ip[] = "198.51.100.1", helo[] = "helo.example",
	    from[] = "someone@pass.example", dom[] = "pass.example",
	    ip2[] = "192.0.2.1", empty[] = "", loop[] = "127.0.0.5",
	    ffrom[] = "x@fail.example", fdom[] = "fail.example";

	(void)state;
	txn_init(&t, ip, helo, from, dom);
	chk_spf_mailfrom(spf, &t);
	assert_int_equal(t.spf.res, CHK_FAIL);
	assert_string_equal(t.spf.identity, "mailfrom");
	assert_string_equal(t.spf.sender, "someone@pass.example");
	assert_string_equal(t.spf.domain, "pass.example");
	assert_non_null(t.spf.reason);
	assert_true(txn_has_symbol(&t, "SPF_FAIL"));
	assert_false(txn_has_symbol(&t, "SPF_PASS"));
	txn_clear(&t);

	/* null sender: the HELO identity */
	txn_init(&t, ip2, helo, empty, NULL);
	chk_spf_mailfrom(spf, &t);
	assert_int_equal(t.spf.res, CHK_PASS);
	assert_string_equal(t.spf.identity, "helo");
	assert_string_equal(t.spf.sender, "postmaster@helo.example");
	assert_true(txn_has_symbol(&t, "SPF_PASS"));
	txn_clear(&t);

	/* null sender after chk_spf_helo: its result is reused */
	txn_init(&t, ip, helo, empty, NULL);
	chk_spf_helo(spf, &t);
	chk_spf_mailfrom(spf, &t);
	assert_int_equal(t.spf.res, CHK_FAIL);
	assert_true(txn_has_symbol(&t, "HELO_SPF_FAIL"));
	assert_true(txn_has_symbol(&t, "SPF_FAIL"));
	txn_clear(&t);

	/* loopback client against -all */
	txn_init(&t, loop, helo, ffrom, fdom);
	chk_spf_mailfrom(spf, &t);
	assert_int_equal(t.spf.res, CHK_FAIL);
	assert_true(txn_has_symbol(&t, "SPF_FAIL"));
	txn_clear(&t);

	/* a second evaluation replaces the first without leaking */
	txn_init(&t, ip2, NULL, from, dom);
	chk_spf_mailfrom(spf, &t);
	chk_spf_mailfrom(spf, &t);
	assert_int_equal(t.spf.res, CHK_PASS);
	txn_clear(&t);
}

static void
test_txn_symbols_each(void **state)
{
	static const struct { const char *from, *dom, *sym; } c[] = {
		{ "a@softfail.example", "softfail.example", "SPF_SOFTFAIL" },
		{ "a@neutral.example", "neutral.example", "SPF_NEUTRAL" },
		{ "a@none.example", "none.example", "SPF_NONE" },
		{ "a@tmp.example", "tmp.example", "SPF_TEMPERROR" },
		{ "a@syntax.example", "syntax.example", "SPF_PERMERROR" },
	};
	char ip[] = "192.0.2.1";

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(c); i++) {
		struct txn t;
		char *from = xstrdup(c[i].from), *dom = xstrdup(c[i].dom);

		txn_init(&t, ip, NULL, from, dom);
		chk_spf_mailfrom(spf, &t);
		if (!txn_has_symbol(&t, c[i].sym) || t.nsym != 1)
			fail_msg("%s: no %s", c[i].from, c[i].sym);
		txn_clear(&t);
		free(from);
		free(dom);
	}
}

/* ---- threads ---- */

#define NTHREADS	4
#define NROUNDS		40

static void *
thread_main(void *arg)
{
	size_t off = (size_t)(uintptr_t)arg;
	char reason[512];
	long bad = 0;

	for (int round = 0; round < NROUNDS; round++) {
		for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
			const struct spf_case *c =
			    &cases[(i + off * 7) % ARRAY_LEN(cases)];

			if (run_case(c, reason, sizeof(reason)) != c->want)
				bad++;
		}
	}
	return (void *)(intptr_t)bad;
}

static void
test_threads(void **state)
{
	pthread_t th[NTHREADS];
	long bad = 0;

	(void)state;
	for (size_t i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main,
		    (void *)(uintptr_t)i), 0);
	for (size_t i = 0; i < NTHREADS; i++) {
		void *r;

		assert_int_equal(pthread_join(th[i], &r), 0);
		bad += (long)(intptr_t)r;
	}
	assert_int_equal(bad, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain_ok),
		cmocka_unit_test(test_is_record),
		cmocka_unit_test(test_record_check),
		cmocka_unit_test(test_map_result),
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_explanation),
		cmocka_unit_test(test_limits_configurable),
		cmocka_unit_test(test_txn_helo),
		cmocka_unit_test(test_txn_mailfrom),
		cmocka_unit_test(test_txn_symbols_each),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
