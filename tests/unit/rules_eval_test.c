/*
 * rules_eval_test.c - evaluation of regex, list, meta, built-in list and
 * DNSBL rules (policy/rules_eval.c, policy/dnsbl.c), PCRE2 limits and
 * the configtest lint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns.h"
#include "dnsbl.h"
#include "mime.h"
#include "rules.h"
#include "txn.h"

static struct rules *
load_flags(const char *text, unsigned flags)
{
	char path[] = "/tmp/mxw-rules-eval-XXXXXX", errs[8192] = "";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct rules *r = rules_load(path, NULL, flags, errs, sizeof(errs));
	unlink(path);
	if (r == NULL)
		fail_msg("rules: %s", errs);
	return r;
}

static struct rules *
load(const char *text)
{
	return load_flags(text, RULES_JIT);
}


static const char rules_text[] =
    "list bad_senders *@spam.example .evil.example @exact.example\n"
    "list nets 192.0.2.0/24 2001:db8::/32\n"
    "list whitelist_from friend@good.example .trusted.example\n"
    "list blacklist_clients 198.51.100.0/24\n"
    "rule R_IP client_ip in:nets score 1\n"
    "rule R_NAME client_name /\\.dyn\\.example$/ score 1\n"
    "rule R_HELO helo /^localhost$/i action reject \"550 5.7.1 bad helo\"\n"
    "rule R_FROM from in:bad_senders score 3\n"
    "rule R_RCPT rcpt /^spamtrap@/ score 9\n"
    "rule R_SUBJ subject /you (have )?won/i score 2\n"
    "rule R_XM header:X-Mailer /bulk\\s*mailer/i score 1\n"
    "rule R_ANY header:* /^Reply-To: .*@freemail\\.example/i score 1\n"
    "rule R_FH from_header /Pay Pal/ score 1\n"
    "rule R_FH_LIST from_header in:bad_senders score 1\n"
    "rule R_BODY body /send (btc|bitcoin) to/i score 4\n"
    "rule R_RAW raw_body /=3D/ score 1\n"
    "rule R_ATT attachment_name /\\.exe$/i score 5\n"
    "rule R_ATT_TYPE attachment_type /^application\\/x-msdownload$/ score 1\n"
    "rule R_SLASH body /a\\/b c/ score 1\n"
    "meta M_BOTH R_SUBJ && R_BODY && !DKIM_PASS score 1\n"
    "meta M_NOT R_SUBJ && DKIM_PASS score 1\n";

static void
add_hdr(struct txn *t, const char *n, const char *v)
{
	txn_add_header(t, n, v);
}

static void
test_eval_targets(void **state)
{
	struct rules *r = load(rules_text);
	struct txn t = { 0 };

	(void)state;
	txn_set_client(&t, "192.0.2.9", 25, NULL);
	t.iprev_name = strdup("host1.dyn.example");
	rules_eval(r, &t, RS_CONNECT, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "R_IP"));
	assert_string_equal(txn_symbol_detail(&t, "R_NAME"), "client_name \".dyn.example\"");
	assert_null(txn_symbol_detail(&t, "BLACKLIST_CLIENT"));
	txn_set_helo(&t, "LOCALHOST");
	rules_eval(r, &t, RS_HELO, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "R_HELO"));
	txn_set_mail(&t, "<x@Spam.example>");
	rules_eval(r, &t, RS_MAIL, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "R_FROM"));
	txn_add_rcpt(&t, "<user@local.example>");
	rules_eval(r, &t, RS_RCPT, NULL, NULL);
	assert_null(txn_symbol_detail(&t, "R_RCPT"));
	txn_add_rcpt(&t, "<spamtrap@local.example>");
	rules_eval(r, &t, RS_RCPT, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "R_RCPT"));

	add_hdr(&t, "From", " =?UTF-8?Q?Pay_Pal?= <service@a.evil.example>");
	add_hdr(&t, "Subject", " =?iso-8859-1?Q?You_have_w?= =?iso-8859-1?Q?on?=");
	add_hdr(&t, "X-Mailer", " Bulk\r\n\tMailer 2");
	add_hdr(&t, "Reply-To", " <x@freemail.example>");
	add_hdr(&t, "Content-Type", " multipart/mixed; boundary=\"b\"");
	struct mime *m = rules_mime_new(&t, 1 << 20);
	const char *body =
	    "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
	    "Please send bit=\ncoin to me, a/b c =3D\n"
	    "--b\nContent-Type: application/x-msdownload; name=\"setup.EXE\"\n\nMZ\n--b--\n";
	mime_feed(m, (const unsigned char *)body, strlen(body));
	mime_finish(m);
	rules_eval(r, &t, RS_EOM, m, NULL);
	rules_eval_meta(r, &t);
	assert_string_equal(txn_symbol_detail(&t, "R_SUBJ"), "subject \"You have won\"");
	assert_non_null(txn_symbol_detail(&t, "R_XM"));
	assert_non_null(txn_symbol_detail(&t, "R_ANY"));
	assert_non_null(txn_symbol_detail(&t, "R_FH"));
	assert_non_null(txn_symbol_detail(&t, "R_FH_LIST"));
	assert_string_equal(txn_symbol_detail(&t, "R_BODY"), "body \"send bitcoin to\"");
	assert_non_null(txn_symbol_detail(&t, "R_RAW"));
	assert_non_null(txn_symbol_detail(&t, "R_ATT"));
	assert_non_null(txn_symbol_detail(&t, "R_ATT_TYPE"));
	assert_non_null(txn_symbol_detail(&t, "R_SLASH"));
	assert_non_null(txn_symbol_detail(&t, "M_BOTH"));
	assert_null(txn_symbol_detail(&t, "M_NOT"));
	assert_null(txn_symbol_detail(&t, "RULES_LIMIT"));
	/* Rule symbols carry the rule's score. */
	assert_true(rules_score(r, "R_BODY") == 4.0);
	assert_non_null(rules_action(r, "R_HELO"));
	mime_free(m);
	free(t.iprev_name);
	t.iprev_name = NULL;
	txn_clear_all(&t);
	rules_free(r);
}

static void
test_lists(void **state)
{
	struct rules *r = load(rules_text);

	(void)state;
	assert_true(rules_list_match(r, "bad_senders", "a@spam.example"));
	assert_true(rules_list_match(r, "bad_senders", "A@SPAM.example"));
	assert_false(rules_list_match(r, "bad_senders", "a@notspam.example"));
	assert_true(rules_list_match(r, "bad_senders", "b@x.evil.example"));
	assert_true(rules_list_match(r, "bad_senders", "evil.example"));
	assert_true(rules_list_match(r, "bad_senders", "c@exact.example"));
	assert_false(rules_list_match(r, "bad_senders", "c@sub.exact.example"));
	assert_true(rules_list_match(r, "nets", "192.0.2.200"));
	assert_true(rules_list_match(r, "nets", "2001:db8::5"));
	assert_true(rules_list_match(r, "nets", "::ffff:192.0.2.1"));
	assert_false(rules_list_match(r, "nets", "198.51.100.1"));
	assert_false(rules_list_match(r, "nets", "a@192.0.2.1"));
	assert_false(rules_list_match(r, "no_such", "192.0.2.1"));
	rules_free(r);
}

/* whitelist_from counts only when SPF or DKIM authenticates the domain;
 * blacklist_clients at connect. */
static void
test_whitelist_needs_auth(void **state)
{
	struct rules *r = load(rules_text);
	struct txn t = { 0 };

	(void)state;
	txn_set_client(&t, "198.51.100.7", 25, NULL);
	rules_eval(r, &t, RS_CONNECT, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "BLACKLIST_CLIENT"));
	/* Envelope on the list, SPF not pass: not whitelisted. */
	txn_set_mail(&t, "friend@good.example");
	t.spf.res = CHK_FAIL;
	rules_eval(r, &t, RS_MAIL, NULL, NULL);
	assert_null(txn_symbol_detail(&t, "WHITELIST_FROM"));
	/* Forged From on the list, no DKIM: not whitelisted. */
	add_hdr(&t, "From", " <boss@www.trusted.example>");
	rules_eval(r, &t, RS_EOM, NULL, NULL);
	assert_null(txn_symbol_detail(&t, "WHITELIST_FROM"));
	/* DKIM pass by another domain: still not. */
	struct txn_dkim_sig sig = { .res = CHK_PASS, .domain = "other.example" };
	t.dkim = &sig;
	t.ndkim = 1;
	rules_eval(r, &t, RS_EOM, NULL, NULL);
	assert_null(txn_symbol_detail(&t, "WHITELIST_FROM"));
	/* DKIM pass by the From domain's parent: whitelisted. */
	sig.domain = "trusted.example";
	rules_eval(r, &t, RS_EOM, NULL, NULL);
	assert_non_null(strstr(txn_symbol_detail(&t, "WHITELIST_FROM"), "DKIM pass"));
	t.dkim = NULL;
	t.ndkim = 0;
	txn_clear_all(&t);

	/* SPF pass for the envelope domain: whitelisted at MAIL. */
	struct txn u = { 0 };
	txn_set_mail(&u, "friend@good.example");
	u.spf.res = CHK_PASS;
	u.spf.domain = strdup("good.example");
	u.spf.identity = strdup("mailfrom");
	rules_eval(r, &u, RS_MAIL, NULL, NULL);
	assert_non_null(strstr(txn_symbol_detail(&u, "WHITELIST_FROM"), "SPF pass"));
	txn_clear_all(&u);
	rules_free(r);
}

/* A catastrophic pattern returns within the limit and is reported,
 * JIT-compiled (a daemon's set) or interpreted (`check`). */
static void
pcre_limit_case(unsigned flags)
{
	struct rules *r = load_flags("rule CATA subject /(a+)+$/ score 1\n"
	    "rule CATA2 body /(x+x+)+y/ score 1\n", flags);
	struct txn t = { 0 };
	size_t n = 30000;
	char *v = malloc(n + 3);

	v[0] = ' ';
	memset(v + 1, 'a', n);
	v[n + 1] = 'b';
	v[n + 2] = '\0';
	add_hdr(&t, "Subject", v);
	struct mime *m = mime_new("", 1 << 20);
	memset(v, 'x', n);
	mime_feed(m, (const unsigned char *)v, n);
	mime_finish(m);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	rules_eval(r, &t, RS_EOM, m, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(secs < 2.0);
	assert_null(txn_symbol_detail(&t, "CATA"));
	assert_null(txn_symbol_detail(&t, "CATA2"));
	assert_non_null(txn_symbol_detail(&t, "RULES_LIMIT"));
	assert_non_null(strstr(txn_symbol_detail(&t, "RULES_LIMIT"), "limit"));
	mime_free(m);
	free(v);
	txn_clear_all(&t);
	rules_free(r);
}

static void
test_pcre_limit(void **state)
{
	(void)state;
	pcre_limit_case(RULES_JIT);
}

static void
test_pcre_limit_interpreted(void **state)
{
	(void)state;
	pcre_limit_case(0);
}

static void
test_dnsbl(void **state)
{
	static const struct dns_static_rr tab[] = {
		{ "9.2.0.192.zen.example", DNS_T_A, "127.0.0.2", DNS_OK },
		{ "9.2.0.192.zen.example", DNS_T_A, "127.0.0.4", DNS_OK },
		{ "9.2.0.192.wl.example", DNS_T_A, "127.0.10.2", DNS_OK },
		{ "10.2.0.192.zen.example", DNS_T_A, "127.255.255.254", DNS_OK },
		{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example",
		    DNS_T_A, "127.0.0.2", DNS_OK },
		{ "bad.example.dbl.example", DNS_T_A, "127.0.1.2", DNS_OK },
		{ "11.2.0.192.zen.example", 0, NULL, DNS_TIMEOUT },
	};
	struct dns *d = dns_new_static(tab, sizeof(tab) / sizeof(tab[0]));
	struct rules *r = load(
	    "dnsbl ZEN zen.example weights 127.0.0.2=5 127.0.0.4=2\n"
	    "dnswl WL wl.example 127.0.10.2=-3\n"
	    "rhsbl DBL dbl.example 127.0.1.2=4\n"
	    "score DNSWL_WL -1\n");
	char name[256];

	(void)state;
	assert_int_equal(dnsbl_ip_name("192.0.2.9", "z.example", name, sizeof(name)), 0);
	assert_string_equal(name, "9.2.0.192.z.example");
	assert_int_equal(dnsbl_ip_name("::ffff:192.0.2.9", "z", name, sizeof(name)), 0);
	assert_string_equal(name, "9.2.0.192.z");
	assert_int_equal(dnsbl_ip_name("2001:db8::1", "z", name, sizeof(name)), 0);
	assert_string_equal(name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.z");
	assert_int_equal(dnsbl_ip_name("nope", "z", name, sizeof(name)), -1);

	struct txn t = { 0 };
	txn_set_client(&t, "192.0.2.9", 25, NULL);
	rules_eval(r, &t, RS_CONNECT, NULL, d);
	assert_non_null(txn_symbol_detail(&t, "DNSBL_ZEN"));
	assert_non_null(txn_symbol_detail(&t, "DNSWL_WL"));
	for (size_t i = 0; i < t.nsym; i++)
		if (strcmp(t.sym[i].name, "DNSBL_ZEN") == 0)
			assert_true(t.sym[i].score == 7.0);	/* both codes */
	txn_set_mail(&t, "a@bad.example");
	rules_eval(r, &t, RS_MAIL, NULL, d);
	assert_non_null(strstr(txn_symbol_detail(&t, "RHSBL_DBL"), "sender"));
	txn_clear_all(&t);

	/* NXDOMAIN and a timeout: not listed. */
	struct txn u = { 0 };
	txn_set_client(&u, "192.0.2.11", 25, NULL);
	rules_eval(r, &u, RS_CONNECT, NULL, d);
	assert_null(txn_symbol_detail(&u, "DNSBL_ZEN"));
	assert_null(txn_symbol_detail(&u, "DNSBL_UNHEALTHY"));
	txn_clear_all(&u);

	/* IPv6 nibbles. */
	struct txn w = { 0 };
	txn_set_client(&w, "2001:db8::1", 25, NULL);
	rules_eval(r, &w, RS_CONNECT, NULL, d);
	assert_non_null(txn_symbol_detail(&w, "DNSBL_ZEN"));
	txn_clear_all(&w);

	/* A code outside the configured ones: error, not a listing, and
	 * the zone is skipped afterwards. */
	struct txn x = { 0 };
	txn_set_client(&x, "192.0.2.10", 25, NULL);
	rules_eval(r, &x, RS_CONNECT, NULL, d);
	assert_null(txn_symbol_detail(&x, "DNSBL_ZEN"));
	assert_non_null(strstr(txn_symbol_detail(&x, "DNSBL_UNHEALTHY"), "127.255.255.254"));
	txn_clear_all(&x);
	struct txn y = { 0 };
	txn_set_client(&y, "192.0.2.9", 25, NULL);
	rules_eval(r, &y, RS_CONNECT, NULL, d);
	assert_null(txn_symbol_detail(&y, "DNSBL_ZEN"));		/* zone unhealthy */
	assert_non_null(txn_symbol_detail(&y, "DNSWL_WL"));	/* others still run */
	txn_clear_all(&y);
	rules_free(r);
	dns_free(d);
}

static void
test_lint(void **state)
{
	struct rules *r = load(
	    "rule EMPTY body /x*/ score 1\n"
	    "rule NOLIST from in:missing score 1\n"
	    "meta M1 M2 && SPF_FAIL score 1\n"
	    "meta M2 NO_SUCH_SYMBOL || DKIM_PASS score 1\n"
	    "rule FINE body /spam/ score 1\n");
	char out[4096];

	(void)state;
	int n = rules_lint(r, out, sizeof(out));
	assert_int_equal(n, 4);
	assert_non_null(strstr(out, ":1: warning: rule EMPTY: pattern /x*/ matches the empty string"));
	assert_non_null(strstr(out, ":2: warning: rule NOLIST: list missing is not defined"));
	assert_non_null(strstr(out, ":3: warning: meta M1 uses meta M2, which is evaluated after it"));
	assert_non_null(strstr(out, ":4: warning: meta M2 uses unknown symbol NO_SUCH_SYMBOL"));
	assert_null(strstr(out, "FINE"));
	rules_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eval_targets),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_whitelist_needs_auth),
		cmocka_unit_test(test_pcre_limit),
		cmocka_unit_test(test_pcre_limit_interpreted),
		cmocka_unit_test(test_dnsbl),
		cmocka_unit_test(test_lint),
	};
	return cmocka_run_group_tests_name("rules_eval", tests, NULL, NULL);
}
