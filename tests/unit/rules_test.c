/*
 * rules_test.c - the rule-file parser and lookups (policy/rules.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "rules.h"
#include "txn.h"
#include "util.h"

/* write_tmp - a temporary file with the given text; returns its path. */
static char *
write_tmp(const char *text)
{
	char *path = strdup("/tmp/mxw-rules-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static struct rules *
load_text(const char *main_text, const char *local_text, char *errs,
    size_t errlen)
{
	char *m = write_tmp(main_text);
	char *l = local_text ? write_tmp(local_text) : NULL;
	struct rules *r = rules_load(m, l, RULES_JIT, errs, errlen);

	unlink(m);
	free(m);
	if (l) {
		unlink(l);
		free(l);
	}
	return r;
}

static void
test_rules_basic(void **state)
{
	char errs[4096];
	int set;
	const char *reply;
	struct rules *r = load_text(
	    "# comment\n"
	    "threshold add_header 5\n"
	    "threshold reject 10 \"550 5.7.1 Spam\"\n"
	    "score SPF_FAIL 3.0   # trailing comment\n"
	    "score IPREV_FAIL -1.5\n"
	    "action DMARC_FAIL_REJECT reject \"550 5.7.26 No %{from_domain}\"\n"
	    "action SENDER_TEMPERROR tempfail\n"
	    "list internal_networks 127.0.0.0/8 ::1 \\\n"
	    "     10.0.0.0/8\n"
	    "list local_domains example.org .sub.example.net\n", NULL,
	    errs, sizeof(errs));

	(void)state;
	if (r == NULL)
		fail_msg("%s", errs);
	assert_true(rules_score(r, "SPF_FAIL") == 3.0);
	assert_true(rules_score(r, "IPREV_FAIL") == -1.5);
	assert_true(rules_score(r, "UNKNOWN") == 0.0);
	assert_true(rules_threshold(r, RT_ADD_HEADER, &set, NULL) == 5.0);
	assert_true(set);
	assert_true(rules_threshold(r, RT_REJECT, &set, &reply) == 10.0);
	assert_string_equal(reply, "550 5.7.1 Spam");
	rules_threshold(r, RT_QUARANTINE, &set, NULL);
	assert_false(set);
	const struct rules_action *a = rules_action(r, "DMARC_FAIL_REJECT");
	assert_non_null(a);
	assert_int_equal(a->action, VERDICT_REJECT);
	assert_string_equal(a->reply, "550 5.7.26 No %{from_domain}");
	a = rules_action(r, "SENDER_TEMPERROR");
	assert_int_equal(a->action, VERDICT_TEMPFAIL);
	assert_null(a->reply);
	assert_null(rules_action(r, "SPF_FAIL"));
	assert_true(rules_list_has_ip(r, "internal_networks", "127.0.0.5"));
	assert_true(rules_list_has_ip(r, "internal_networks", "10.200.0.1"));
	assert_true(rules_list_has_ip(r, "internal_networks", "::1"));
	assert_true(rules_list_has_ip(r, "internal_networks", "::ffff:127.0.0.9"));
	assert_false(rules_list_has_ip(r, "internal_networks", "192.0.2.1"));
	assert_false(rules_list_has_ip(r, "no_such_list", "127.0.0.1"));
	assert_true(rules_list_has_domain(r, "local_domains", "EXAMPLE.org"));
	assert_false(rules_list_has_domain(r, "local_domains", "a.example.org"));
	assert_true(rules_list_has_domain(r, "local_domains", "a.sub.example.net"));
	assert_true(rules_list_has_domain(r, "local_domains", "sub.example.net"));
	assert_false(rules_list_has_domain(r, "local_domains", "xsub.example.net"));
	rules_free(r);
}

static void
test_rules_local_overrides(void **state)
{
	char errs[4096];
	struct rules *r = load_text("score SPF_FAIL 3\nlist local_domains a.example\n",
	    "score SPF_FAIL 7\nlist local_domains b.example\n", errs, sizeof(errs));

	(void)state;
	if (r == NULL)
		fail_msg("%s", errs);
	assert_true(rules_score(r, "SPF_FAIL") == 7.0);
	assert_false(rules_list_has_domain(r, "local_domains", "a.example"));
	assert_true(rules_list_has_domain(r, "local_domains", "b.example"));
	rules_free(r);
}

/* Many rules (the name indexes grow several times): every score kept,
 * a local rule replaces the main file's of that name, and a name used
 * twice in one file is still refused after hundreds of others. */
static void
test_rules_many(void **state)
{
	struct buf m, l;
	char errs[4096], name[32];
	struct rules *r;

	(void)state;
	buf_init(&m, 1 << 20);
	buf_init(&l, 1 << 20);
	for (int i = 0; i < 700; i++)
		buf_printf(&m, "rule R%04d body /word%04d/ score %d\n"
		    "score S%04d %d\n", i, i, i % 7 + 1, i, i % 5 + 1);
	buf_printf(&l, "rule R0123 body /other/ score 20\n");
	r = load_text(m.data, l.data, errs, sizeof(errs));
	if (r == NULL)
		fail_msg("%s", errs);
	for (int i = 0; i < 700; i += 37) {
		str_fmt(name, sizeof(name), "R%04d", i);
		assert_true(rules_score(r, name) == (i == 123 ? 20.0 : i % 7 + 1));
		str_fmt(name, sizeof(name), "S%04d", i);
		assert_true(rules_score(r, name) == i % 5 + 1);
	}
	rules_free(r);
	buf_printf(&m, "rule R0500 body /again/ score 1\n");
	assert_null(load_text(m.data, NULL, errs, sizeof(errs)));
	assert_non_null(strstr(errs, ":1401: rule R0500 already defined at line 1001"));
	buf_free(&m);
	buf_free(&l);
}

/* Every bad line is reported with its file:line, all in one run. */
struct bad_case {
	const char	*text;
	const char	*want;
};

static const struct bad_case bad[] = {
	{ "score SPF_FAIL\n", ":1: usage: score" },
	{ "score spf_fail 1\n", ":1: bad symbol name" },
	{ "score SPF_FAIL abc\n", ":1: bad score" },
	{ "score SPF_FAIL nan\n", ":1: bad score" },
	{ "\nscore A 1\nscore A 2\n", ":3: score A already set at line 2" },
	{ "action X explode\n", ":1: unknown action" },
	{ "action X reject \"250 ok\"\n", ":1: malformed reply" },
	{ "action X reject \"450 4.7.1 later\"\n", ":1: reject needs a 5xx" },
	{ "action X tempfail \"550 5.7.1 no\"\n", ":1: tempfail needs a 4xx" },
	{ "action X reject \"550 4.7.1 mismatch\"\n", ":1: malformed reply" },
	{ "action X reject \"550 5.7.1 %{nope}\"\n", ":1: unknown variable %{nope}" },
	{ "action X reject \"550 5.7.1 100%\"\n", ":1: '%' in a reply" },
	{ "action X quarantine \"550 5.7.1 x\"\n", ":1: only reject and tempfail" },
	{ "threshold sometimes 5\n", ":1: unknown threshold" },
	{ "list nets 10.0.0.0/33\n", ":1: list nets: \"10.0.0.0/33\" is not" },
	{ "list nets 300.1.2.3\n", ":1: list nets: \"300.1.2.3\" is not" },
	{ "list Bad 1.2.3.4\n", ":1: bad list name" },
	{ "list nets file:/nonexistent/list\n", ":1: list nets: cannot open" },
	{ "frobnicate X\n", ":1: unknown directive \"frobnicate\"" },
	{ "score X \"1\n", ":1: unterminated quoted string" },
	{ "score A 1\nscore B x\nscore C y\n", ":3: bad score" },
	/* rule, meta, dnsbl lines */
	{ "rule lower subject /x/ score 1\n", ":1: bad rule name" },
	{ "rule R nowhere /x/ score 1\n", ":1: unknown target \"nowhere\"" },
	{ "rule R header: /x/ score 1\n", ":1: unknown target" },
	{ "rule R subject x score 1\n", ":1: rule R: expected /pattern/flags" },
	{ "rule R subject /x score 1\n", ":1: rule R: pattern must be" },
	{ "\n\nrule R body /(unclosed/ score 1\n", ":3: pattern /(unclosed/ does not compile" },
	{ "rule R body /x/q score 1\n", ":1: unknown pattern flag 'q'" },
	{ "rule R body /x/\n", ":1: R needs a score or an action" },
	{ "rule R body /x/ score many\n", ":1: bad score" },
	{ "rule R body /x/ action explode\n", ":1: unknown action" },
	{ "rule R body /x/ action reject \"250 ok\"\n", ":1: malformed reply" },
	{ "rule R body /x/ score 1\nrule R body /y/ score 1\n", ":2: rule R already defined at line 1" },
	{ "rule R from in: score 1\n", ":1: rule R: in: needs a list name" },
	{ "meta M A && score 1\n", ":1: meta M: expression ends early" },
	{ "meta M (A || B score 1\n", ":1: meta M: missing ')'" },
	{ "meta M A B score 1\n", ":1: meta M: unexpected text" },
	{ "meta M M && A score 1\n", ":1: meta M refers to itself" },
	{ "meta M A\n", ":1: usage: meta" },
	{ "dnsbl X zen.example 127.0.0.2\n", ":1: expected CODE=WEIGHT" },
	{ "dnsbl X zen.example 10.0.0.2=1\n", ":1: code \"10.0.0.2\" is not" },
	{ "dnsbl X zen.example weights\n", ":1: at least one CODE=WEIGHT" },
	{ "dnsbl X zen.example 127.0.0.2=1\ndnsbl X zen.example 127.0.0.2=1\n", ":2: dnsbl X already defined" },
	{ "rhsbl x dbl.example 127.0.0.2=1\n", ":1: bad name" },
};

static void
test_rules_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char errs[4096] = "";
		struct rules *r = load_text(bad[i].text, NULL, errs, sizeof(errs));
		if (r != NULL)
			fail_msg("case %zu accepted: %s", i, bad[i].text);
		if (strstr(errs, bad[i].want) == NULL)
			fail_msg("case %zu: want \"%s\" in \"%s\"", i, bad[i].want, errs);
	}
}

static void
test_rules_list_file(void **state)
{
	char errs[4096], text[256];
	char *lf = write_tmp("# our nets\n192.0.2.0/24\n\n2001:db8::/32  # v6\n");
	struct rules *r;

	(void)state;
	snprintf(text, sizeof(text), "list internal_networks file:%s 198.51.100.7\n",
	    lf);
	r = load_text(text, NULL, errs, sizeof(errs));
	unlink(lf);
	free(lf);
	if (r == NULL)
		fail_msg("%s", errs);
	assert_true(rules_list_has_ip(r, "internal_networks", "192.0.2.77"));
	assert_true(rules_list_has_ip(r, "internal_networks", "2001:db8:1::5"));
	assert_true(rules_list_has_ip(r, "internal_networks", "198.51.100.7"));
	assert_false(rules_list_has_ip(r, "internal_networks", "198.51.100.8"));
	rules_free(r);
}

static void
test_rules_missing_local_ok(void **state)
{
	char errs[1024];
	char *m = write_tmp("score A 1\n");
	struct rules *r = rules_load(m, "/nonexistent/local.rules", RULES_JIT, errs,
	    sizeof(errs));

	(void)state;
	unlink(m);
	free(m);
	assert_non_null(r);
	rules_free(r);
	r = rules_load("/nonexistent/main.rules", NULL, RULES_JIT, errs, sizeof(errs));
	assert_null(r);
	assert_non_null(strstr(errs, "/nonexistent/main.rules: cannot open"));
}

static void
test_rules_cidr(void **state)
{
	(void)state;
	assert_int_equal(rules_ip_in_cidr("10.1.2.3", "10.0.0.0/8"), 1);
	assert_int_equal(rules_ip_in_cidr("11.1.2.3", "10.0.0.0/8"), 0);
	assert_int_equal(rules_ip_in_cidr("10.1.2.3", "10.1.2.3"), 1);
	assert_int_equal(rules_ip_in_cidr("10.1.2.3", "0.0.0.0/0"), 1);
	assert_int_equal(rules_ip_in_cidr("192.0.2.129", "192.0.2.128/25"), 1);
	assert_int_equal(rules_ip_in_cidr("192.0.2.127", "192.0.2.128/25"), 0);
	assert_int_equal(rules_ip_in_cidr("2001:db8::1", "2001:db8::/32"), 1);
	assert_int_equal(rules_ip_in_cidr("2001:db9::1", "2001:db8::/32"), 0);
	assert_int_equal(rules_ip_in_cidr("10.1.2.3", "2001:db8::/32"), 0);
	assert_int_equal(rules_ip_in_cidr("garbage", "10.0.0.0/8"), 0);
	assert_int_equal(rules_ip_in_cidr("10.1.2.3", "10.0.0.0/"), -1);
	assert_int_equal(rules_ip_in_cidr("10.1.2.3", "10.0.0.0/x"), -1);
	assert_int_equal(rules_ip_in_cidr("10.1.2.3", "10.0.0.0/-1"), -1);
}

static void
test_rules_reply_parse(void **state)
{
	char rc[4], xc[16];
	const char *text;

	(void)state;
	assert_int_equal(rules_parse_reply("550 5.7.1 Go away", rc, xc, &text), 0);
	assert_string_equal(rc, "550");
	assert_string_equal(xc, "5.7.1");
	assert_string_equal(text, "Go away");
	assert_int_equal(rules_parse_reply("451 Later", rc, xc, &text), 0);
	assert_string_equal(xc, "");
	assert_string_equal(text, "Later");
	assert_int_equal(rules_parse_reply("556 5.1.10 Null MX", rc, xc, &text), 0);
	assert_string_equal(xc, "5.1.10");
	assert_int_equal(rules_parse_reply("55 5.7.1 short", rc, xc, &text), -1);
	assert_int_equal(rules_parse_reply("550 5.7.1 bad\r\nRSET", rc, xc, &text),
	    -1);
	assert_int_equal(rules_parse_reply("650 6.7.1 no", rc, xc, &text), -1);
}

static void
test_rules_expand(void **state)
{
	struct txn t;
	char out[128];
	char *rcpt[] = { "r@example.org" };

	(void)state;
	memset(&t, 0, sizeof(t));
	t.client_ip = "192.0.2.1";
	t.helo = "evil\r\nhelo";
	t.mail_from = "s@example.net";
	t.from_domain = "example.com";
	t.rcpt = rcpt;
	t.nrcpt = 1;
	rules_expand("%{client_ip} %{helo} %{from} %{from_domain} %{rcpt} "
	    "%{symbol} 100%%", &t, "SYM", out, sizeof(out));
	assert_string_equal(out, "192.0.2.1 evil??helo s@example.net example.com "
	    "r@example.org SYM 100%");
	rules_expand("%{client_ip}", &t, "S", out, 5);
	assert_string_equal(out, "192.");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_basic),
		cmocka_unit_test(test_rules_local_overrides),
		cmocka_unit_test(test_rules_many),
		cmocka_unit_test(test_rules_errors),
		cmocka_unit_test(test_rules_list_file),
		cmocka_unit_test(test_rules_missing_local_ok),
		cmocka_unit_test(test_rules_cidr),
		cmocka_unit_test(test_rules_reply_parse),
		cmocka_unit_test(test_rules_expand),
	};
	return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
