/*
 * spf_record_test.c - unit tests of policy/spf_record.c: the RFC 7208
 * record validator (valid and invalid records of every term kind), the
 * rewrite for libspf2 (unknown modifiers, redirect placement, CIDR
 * length 0) and the explanation-text check. Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "spf_record.h"
#include "util.h"

static const char *valid[] = {
	"v=spf1",
	"v=spf1 -all",
	"V=SPF1 -ALL",
	"v=spf1 a  -all ",
	"v=spf1 +a ~mx ?ptr -all",
	"v=spf1 a:example.com a:example.com. a:%{d} a:%{d}.example.com",
	"v=spf1 a/24 a//64 a/24//64 a:example.com/0 mx:example.com//0",
	"v=spf1 mx:mail.example.com/32//128 -all",
	"v=spf1 ptr:example.com ptr -all",
	"v=spf1 ip4:192.0.2.1 ip4:192.0.2.0/24 ip4:0.0.0.0/0 ip4:1.2.3.4/32",
	"v=spf1 ip6:2001:db8::/32 ip6:::1 ip6:::1.1.1.1/0 ip6:Cafe:Babe::/128",
	"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d}",
	"v=spf1 exists:%{i}._spf.%{d2} exists:%{S}.x.example.com",
	"v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all",
	"v=spf1 redirect=_spf.example.com",
	"v=spf1 -all exp=explain._spf.%{d}",
	"v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all",
	"v=spf1 foo= -all",
	"v=spf1 foo=%{r}%{c}%{t} -all",
	"v=spf1 a:xn--zckzah.example.xn--zckzah a:foo.b-2 -all",
	"v=spf1 ip4:1.2.3.4 redirect=t2.example.com",
};

static const struct { const char *rec, *why; } invalid[] = {
	{ "v=spf1 a:\xef\xbb\xbfgarbage.example.net -all", "non-ASCII" },
	{ "v=spf1 a:ctrl.example.com\rptr -all", "control" },
	{ "v=spf10 -all", "v=spf1" },
	{ "v=spf1 all.", "unknown mechanism" },
	{ "v=spf1 all:foo", "no argument" },
	{ "v=spf1 -all/8", "no argument" },
	{ "v=spf1 ip4:1.2.3.4 redirect:t2.example.com", "unknown mechanism" },
	{ "v=spf1 a:foo-bar -all", "top label" },
	{ "v=spf1 ptr:", "empty domain-spec" },
	{ "v=spf1 ptr/0", "ptr" },
	{ "v=spf1 a:example.com:8080", "top label" },
	{ "v=spf1 a:111.222.33.44", "top label" },
	{ "v=spf1 a:abc.123", "top label" },
	{ "v=spf1 a:example.-com", "top label" },
	{ "v=spf1 a:example.com-", "top label" },
	{ "v=spf1 a:museum", "top label" },
	{ "v=spf1 a:museum.", "top label" },
	{ "v=spf1 a:%{d}.", "top label" },
	{ "v=spf1 a:", "empty domain-spec" },
	{ "v=spf1 a/33", "CIDR" },
	{ "v=spf1 a//129", "CIDR" },
	{ "v=spf1 a/24/64", "CIDR" },
	{ "v=spf1 mx: -all", "empty domain-spec" },
	{ "v=spf1 exists:", "empty domain-spec" },
	{ "v=spf1 exists", "needs a domain" },
	{ "v=spf1 include", "needs a domain" },
	{ "v=spf1 exists:mail.example.com/24", "top label" },
	{ "v=spf1 ip4:1.2.3.4/032 -all", "CIDR" },
	{ "v=spf1 ip4:1.2.3.4/33", "CIDR" },
	{ "v=spf1 ip4:1.2.3.4//32", "CIDR" },
	{ "v=spf1 ip4:1.2.3", "network" },
	{ "v=spf1 ip4:1.2.3.4:8080", "network" },
	{ "v=spf1 ip4:01.2.3.4", "network" },
	{ "v=spf1 ip4:256.2.3.4", "network" },
	{ "v=spf1 ip4", "network" },
	{ "v=spf1 ip6", "network" },
	{ "v=spf1 ip6::1", "network" },
	{ "v=spf1 ip6:2001:db8::/129", "CIDR" },
	{ "v=spf1 ip6:1.2.3.4", "network" },
	{ "v=spf1 exp= -all", "empty domain-spec" },
	{ "v=spf1 exp=-all", "top label" },
	{ "v=spf1 exp=a.example.com -all exp=b.example.com", "more than once" },
	{ "v=spf1 ?all redirect=", "empty domain-spec" },
	{ "v=spf1 redirect=a.example.com -all redirect=a.example.com",
	    "more than once" },
	{ "v=spf1 -all foo=%abc", "macro escape" },
	{ "v=spf1 -all 1foo=bar", "modifier name" },
	{ "v=spf1 -all =bar", "modifier name" },
	{ "v=spf1 -all exp=%{r}.example.com", "macro letter" },
	{ "v=spf1 -exists:%(ir).sbl.example.com ?all", "macro escape" },
	{ "v=spf1 exists:foo%.sbl.example.com ?all", "macro escape" },
	{ "v=spf1 exists:foo.example.com%", "lone" },
	{ "v=spf1 a:%{a}.example.com -all", "macro letter" },
	{ "v=spf1 a:%{d.example.com -all", "macro" },
	{ "v=spf1 a:%{d2x}.example.com -all", "macro" },
	{ "v=spf1 frobnicate:x.example -all", "unknown mechanism" },
};

static void
test_valid(void **state)
{
	char why[256];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
		why[0] = '\0';
		if (chk_spfrec_validate(valid[i], strlen(valid[i]), why,
		    sizeof(why)) != 0) {
			print_error("refused \"%s\": %s\n", valid[i], why);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_invalid(void **state)
{
	char why[256];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(invalid); i++) {
		why[0] = '\0';
		if (chk_spfrec_validate(invalid[i].rec, strlen(invalid[i].rec),
		    why, sizeof(why)) != -1) {
			print_error("accepted \"%s\"\n", invalid[i].rec);
			bad++;
		} else if (strstr(why, invalid[i].why) == NULL) {
			print_error("\"%s\": reason \"%s\" lacks \"%s\"\n",
			    invalid[i].rec, why, invalid[i].why);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_nul(void **state)
{
	const char rec[] = "v=spf1 a\0 -all";
	char why[64];

	(void)state;
	assert_int_equal(chk_spfrec_validate(rec, sizeof(rec) - 1, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "NUL"));
	/* a tiny reason buffer is cut, never overrun */
	assert_int_equal(chk_spfrec_validate(rec, sizeof(rec) - 1, why, 4), -1);
	assert_int_equal(strlen(why), 3);
}

#define S	CHK_SPFREC_ANY_SUFFIX

static const struct {
	const char	*in;
	int		 family;
	const char	*out;
	int		 any;
} rewrites[] = {
	{ "v=spf1 ip4:1.2.3.4 -all", 4, "v=spf1 ip4:1.2.3.4 -all", 0 },
	{ "v=spf1  a   -all ", 4, "v=spf1 a -all", 0 },
	{ "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", 4,
	    "v=spf1 ip4:1.2.3.4 -all", 0 },
	{ "v=spf1 redirect=t5.example.com ~all", 4, "v=spf1 ~all", 0 },
	{ "v=spf1 redirect=r.example.com ip4:1.2.3.4 exp=e.example.com", 4,
	    "v=spf1 ip4:1.2.3.4 exp=e.example.com redirect=r.example.com", 0 },
	{ "v=spf1 ip4:1.2.3.4/0 -all", 4,
	    "v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all", 0 },
	{ "v=spf1 -ip6:::1.1.1.1/0", 6, "v=spf1 -ip6:::/1 -ip6:8000::/1", 0 },
	{ "v=spf1 a/0 -all", 4, "v=spf1 a:%{d}" S " -all", 1 },
	{ "v=spf1 a/0 -all", 6, "v=spf1 a -all", 0 },
	{ "v=spf1 a:e.example.com./0 -all", 4, "v=spf1 a:e.example.com" S
	    " -all", 1 },
	{ "v=spf1 ?mx:e.example.com//0 -all", 6, "v=spf1 ?mx:e.example.com" S
	    " -all", 1 },
	{ "v=spf1 mx:e.example.com/24//0 -all", 4,
	    "v=spf1 mx:e.example.com/24 -all", 0 },
	{ "v=spf1 mx/0//64 -all", 6, "v=spf1 mx//64 -all", 0 },
	{ "v=spf1 a/24//64 -all", 6, "v=spf1 a/24//64 -all", 0 },
};

static void
test_rewrite(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rewrites); i++) {
		int any = -1;
		char *out = chk_spfrec_rewrite(rewrites[i].in,
		    strlen(rewrites[i].in), rewrites[i].family, &any);

		if (strcmp(out, rewrites[i].out) != 0 ||
		    any != rewrites[i].any) {
			print_error("rewrite(\"%s\", %d) = \"%s\" any=%d, want "
			    "\"%s\" any=%d\n", rewrites[i].in,
			    rewrites[i].family, out, any, rewrites[i].out,
			    rewrites[i].any);
			bad++;
		}
		free(out);
	}
	assert_int_equal(bad, 0);
}

static void
test_exp_ok(void **state)
{
	static const struct { const char *t; int ok; } c[] = {
		{ "", 1 },
		{ "This is a test.", 1 },
		{ "  %{i} is not one of %{d}'s designated mail servers.  ", 1 },
		{ "Connections from %{c} not authorized at %{r} on %{t}", 1 },
		{ "See http://%{d}/why.html?s=%{S}&i=%{I}%%", 1 },
		{ "The%{x}-files.", 0 },
		{ "100% sure", 0 },
		{ "\xef\xbb\xbf" "Explanation", 0 },
		{ "tab\there", 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(c); i++)
		if (chk_spfrec_exp_ok(c[i].t, strlen(c[i].t)) != c[i].ok)
			fail_msg("exp_ok(\"%s\") != %d", c[i].t, c[i].ok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_exp_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
