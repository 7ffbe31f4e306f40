/*
 * dmarc_test.c - unit tests of policy/dmarc.c and policy/psl.c.
 *
 * DNS answers come from the in-memory resolver; the public suffix list
 * is a small file written to a temporary directory (and, when Debian's
 * publicsuffix package is installed, a few checks against the real one).
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

#include "dmarc.h"
#include "dns.h"
#include "psl.h"
#include "txn.h"
#include "util.h"

#define REAL_PSL "/usr/share/publicsuffix/public_suffix_list.dat"

static char tmpdir[] = "/tmp/mxw-dmarc-test.XXXXXX";
static char pslpath[300];
static struct dns *dns;
static struct chk_dmarc *dm;

static const char psl_text[] =
    "// test list\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "*.ck\n"
    "!www.ck\n"
    "io\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "github.io\n";

static const struct dns_static_rr table[] = {
	{ "_dmarc.example.com", DNS_T_TXT,
	    "v=DMARC1; p=reject; sp=quarantine", DNS_OK },
	{ "_dmarc.none.com", DNS_T_TXT, "v=DMARC1; p=none", DNS_OK },
	{ "_dmarc.quar.com", DNS_T_TXT, "v=DMARC1; p=quarantine", DNS_OK },
	{ "_dmarc.strict.com", DNS_T_TXT,
	    "v=DMARC1; p=reject; adkim=s; aspf=s", DNS_OK },
	{ "_dmarc.pct0.com", DNS_T_TXT, "v=DMARC1; p=reject; pct=0", DNS_OK },
	{ "_dmarc.pct100.com", DNS_T_TXT, "v=DMARC1;p=reject;pct=100",
	    DNS_OK },
	{ "_dmarc.pct0q.com", DNS_T_TXT, "v=DMARC1; p=quarantine; pct=0",
	    DNS_OK },
	{ "_dmarc.bad.com", DNS_T_TXT, "v=DMARC1; p=bogus", DNS_OK },
	{ "_dmarc.multi.com", DNS_T_TXT, "v=DMARC1; p=reject", DNS_OK },
	{ "_dmarc.multi.com", DNS_T_TXT, "v=DMARC1; p=none", DNS_OK },
	{ "_dmarc.other.com", DNS_T_TXT, "v=spf1 -all", DNS_OK },
	{ "_dmarc.other.com", DNS_T_TXT, "v=DMARC10; p=reject", DNS_OK },
	{ "_dmarc.mixed.com", DNS_T_TXT, "v=spf1 -all", DNS_OK },
	{ "_dmarc.mixed.com", DNS_T_TXT, "v = DMARC1 ; p=quarantine", DNS_OK },
	{ "_dmarc.nosp.com", DNS_T_TXT, "v=DMARC1; p=reject", DNS_OK },
	{ "_dmarc.tmo.com", 0, NULL, DNS_TIMEOUT },
	{ "_dmarc.sf.com", 0, NULL, DNS_SERVFAIL },
	{ "_dmarc.sub.tmo2.com", 0, NULL, DNS_TIMEOUT },
	{ "_dmarc.tmo2.com", DNS_T_TXT, "v=DMARC1; p=none", DNS_OK },
	{ "_dmarc.orgtmo.com", 0, NULL, DNS_TIMEOUT },
	{ "_dmarc.foo.github.io", DNS_T_TXT, "v=DMARC1; p=reject", DNS_OK },
	{ "example.com", DNS_T_A, "192.0.2.1", DNS_OK },
};

static int
group_setup(void **state)
{
	FILE *f;
	char err[200];

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(pslpath, sizeof(pslpath), "%s/psl.dat", tmpdir);
	f = fopen(pslpath, "w");
	if (f == NULL || fputs(psl_text, f) < 0 || fclose(f) != 0)
		return -1;
	dns = dns_new_static(table, ARRAY_LEN(table));
	dm = chk_dmarc_new(dns, pslpath, err, sizeof(err));
	return dns != NULL && dm != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	chk_dmarc_free(dm);
	dns_free(dns);
	unlink(pslpath);
	return rmdir(tmpdir);
}

/* A message: From field(s), envelope, SPF and DKIM results. */
struct msg {
	const char	*from[3];	/* From values, NULL-terminated */
	const char	*mail_from;	/* NULL: null sender */
	enum chk_res	 spf;
	const char	*spf_identity;
	const char	*spf_domain;
	const char	*dkim_d[3];	/* passing signatures' d= */
	const char	*dkim_fail_d;	/* a failing signature's d= */
};

static void
txn_done(struct txn *t)
{
	for (size_t i = 0; i < t->nhdr; i++) {
		free(t->hdr[i].name);
		free(t->hdr[i].value);
	}
	free(t->hdr);
	for (size_t i = 0; i < t->ndkim; i++) {
		free(t->dkim[i].domain);
		free(t->dkim[i].selector);
	}
	free(t->dkim);
	for (size_t i = 0; i < t->nsym; i++) {
		free(t->sym[i].name);
		free(t->sym[i].detail);
	}
	free(t->sym);
	free(t->mail_from);
	free(t->spf.identity);
	free(t->spf.domain);
	free(t->from_domain);
	free(t->dmarc.from_domain);
	free(t);
}

static void
add_dkim(struct txn *t, const char *d, enum chk_res r)
{
	t->dkim = xrealloc(t->dkim, (t->ndkim + 1) * sizeof(*t->dkim));
	memset(&t->dkim[t->ndkim], 0, sizeof(*t->dkim));
	t->dkim[t->ndkim].res = r;
	t->dkim[t->ndkim].domain = xstrdup(d);
	t->dkim[t->ndkim].selector = xstrdup("s");
	t->ndkim++;
}

static struct txn *
run(const struct msg *m)
{
	struct txn *t = xcalloc(1, sizeof(*t));

	str_copy(t->id, "TEST", sizeof(t->id));
	for (size_t i = 0; m->from[i] != NULL; i++) {
		t->hdr = xrealloc(t->hdr, (t->nhdr + 1) * sizeof(*t->hdr));
		t->hdr[t->nhdr].name = xstrdup(i % 2 ? "FROM" : "From");
		t->hdr[t->nhdr].value = xstrdup(m->from[i]);
		t->nhdr++;
	}
	t->mail_from = xstrdup(m->mail_from != NULL ? m->mail_from : "");
	t->spf.res = m->spf;
	t->spf.identity = m->spf_identity ? xstrdup(m->spf_identity) : NULL;
	t->spf.domain = m->spf_domain ? xstrdup(m->spf_domain) : NULL;
	if (m->dkim_fail_d != NULL)
		add_dkim(t, m->dkim_fail_d, CHK_FAIL);
	for (size_t i = 0; m->dkim_d[i] != NULL; i++)
		add_dkim(t, m->dkim_d[i], CHK_PASS);
	chk_dmarc_run(dm, t);
	return t;
}

/* expect - run m and check the one symbol, result and disposition. */
static void
expect(const struct msg *m, const char *sym, enum chk_res res,
    const char *policy, const char *dis)
{
	struct txn *t = run(m);

	if (t->nsym != 1 || strcmp(t->sym[0].name, sym) != 0)
		fail_msg("From %s: got %s (%s), expected %s", m->from[0],
		    t->nsym ? t->sym[0].name : "nothing",
		    t->nsym && t->sym[0].detail ? t->sym[0].detail : "-", sym);
	assert_int_equal(t->dmarc.res, res);
	if (policy != NULL)
		assert_string_equal(t->dmarc.policy, policy);
	if (dis != NULL)
		assert_string_equal(t->dmarc.disposition, dis);
	txn_done(t);
}

static void
test_pass_spf_relaxed(void **state)
{
	struct msg m = { .from = { "Alice <alice@example.com>" },
	    .mail_from = "bounce@mail.example.com", .spf = CHK_PASS,
	    .spf_identity = "mailfrom", .spf_domain = "mail.example.com" };
	struct txn *t;

	(void)state;
	expect(&m, "DMARC_PASS", CHK_PASS, "reject", "none");
	t = run(&m);
	assert_string_equal(t->from_domain, "example.com");
	assert_string_equal(t->dmarc.from_domain, "example.com");
	txn_done(t);
	/* SPF pass for an unrelated domain does not align */
	m.mail_from = "x@other.org";
	m.spf_domain = "other.org";
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
	/* SPF fail of an aligned domain does not count */
	m.spf_domain = "example.com";
	m.spf = CHK_FAIL;
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
}

static void
test_pass_dkim_relaxed(void **state)
{
	struct msg m = { .from = { "alice@example.com" },
	    .mail_from = "x@other.org", .spf = CHK_FAIL,
	    .spf_identity = "mailfrom", .spf_domain = "other.org",
	    .dkim_d = { "other.org", "news.example.com" } };

	(void)state;
	expect(&m, "DMARC_PASS", CHK_PASS, NULL, "none");
	/* only a failing aligned signature */
	m.dkim_d[1] = NULL;
	m.dkim_fail_d = "example.com";
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
}

static void
test_strict(void **state)
{
	struct msg m = { .from = { "a@strict.com" }, .mail_from =
	    "b@mail.strict.com", .spf = CHK_PASS, .spf_identity = "mailfrom",
	    .spf_domain = "mail.strict.com", .dkim_d = { "news.strict.com" } };

	(void)state;
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
	m.dkim_d[0] = "STRICT.com";
	expect(&m, "DMARC_PASS", CHK_PASS, NULL, NULL);
	m.dkim_d[0] = NULL;
	m.spf_domain = "strict.com";
	m.mail_from = "b@strict.com";
	expect(&m, "DMARC_PASS", CHK_PASS, NULL, NULL);
}

static void
test_policies(void **state)
{
	struct msg m = { .from = { "a@quar.com" }, .mail_from = "b@x.org",
	    .spf = CHK_PASS, .spf_identity = "mailfrom", .spf_domain = "x.org" };

	(void)state;
	expect(&m, "DMARC_FAIL_QUARANTINE", CHK_FAIL, "quarantine",
	    "quarantine");
	m.from[0] = "a@none.com";
	expect(&m, "DMARC_FAIL_NONE", CHK_FAIL, "none", "none");
	m.from[0] = "a@example.com";
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
}

static void
test_subdomain_policy(void **state)
{
	struct msg m = { .from = { "a@deep.sub.example.com" },
	    .mail_from = "b@x.org", .spf = CHK_PASS,
	    .spf_identity = "mailfrom", .spf_domain = "x.org" };

	(void)state;
	/* no record at the From domain: example.com's sp= applies */
	expect(&m, "DMARC_FAIL_QUARANTINE", CHK_FAIL, "quarantine",
	    "quarantine");
	/* org record without sp=: p= applies */
	m.from[0] = "a@sub.nosp.com";
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
	/* aligned with the org domain's signature: pass */
	m.from[0] = "a@deep.sub.example.com";
	m.dkim_d[0] = "example.com";
	expect(&m, "DMARC_PASS", CHK_PASS, "quarantine", "none");
	/* a private-section suffix is its own organization */
	m.dkim_d[0] = "bar.github.io";
	m.from[0] = "a@x.foo.github.io";
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
}

static void
test_pct(void **state)
{
	struct msg m = { .from = { "a@pct0.com" }, .mail_from = "b@x.org",
	    .spf = CHK_PASS, .spf_identity = "mailfrom", .spf_domain = "x.org" };

	(void)state;
	/* pct=0: never applied, the next weaker policy (several runs) */
	for (int i = 0; i < 20; i++)
		expect(&m, "DMARC_FAIL_QUARANTINE", CHK_FAIL, "reject",
		    "quarantine");
	m.from[0] = "a@pct0q.com";
	expect(&m, "DMARC_FAIL_NONE", CHK_FAIL, "quarantine", "none");
	m.from[0] = "a@pct100.com";
	for (int i = 0; i < 20; i++)
		expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, "reject", "reject");
}

static void
test_no_record(void **state)
{
	struct msg m = { .from = { "a@norecord.com" } };

	(void)state;
	expect(&m, "DMARC_NONE", CHK_NONE, NULL, NULL);
	m.from[0] = "a@multi.com";	/* two DMARC records: none */
	expect(&m, "DMARC_NONE", CHK_NONE, NULL, NULL);
	m.from[0] = "a@other.com";	/* no v=DMARC1 record */
	expect(&m, "DMARC_NONE", CHK_NONE, NULL, NULL);
	m.from[0] = "a@mixed.com";	/* one of two is DMARC1 */
	expect(&m, "DMARC_FAIL_QUARANTINE", CHK_FAIL, NULL, NULL);
}

static void
test_dns_errors(void **state)
{
	struct msg m = { .from = { "a@tmo.com" } };

	(void)state;
	expect(&m, "DMARC_TEMPERROR", CHK_TEMPERROR, NULL, NULL);
	m.from[0] = "a@sf.com";
	expect(&m, "DMARC_TEMPERROR", CHK_TEMPERROR, NULL, NULL);
	/* error at the From domain: no fallback to the org record */
	m.from[0] = "a@sub.tmo2.com";
	expect(&m, "DMARC_TEMPERROR", CHK_TEMPERROR, NULL, NULL);
	/* error at the org domain */
	m.from[0] = "a@x.orgtmo.com";
	expect(&m, "DMARC_TEMPERROR", CHK_TEMPERROR, NULL, NULL);
}

static void
test_bad_record(void **state)
{
	struct msg m = { .from = { "a@bad.com" } };

	(void)state;
	expect(&m, "DMARC_PERMERROR", CHK_PERMERROR, NULL, NULL);
}

static void
test_bad_from(void **state)
{
	static const char *const bad[] = {
		"",
		"   ",
		"a@example.com, b@example.com",
		"undisclosed-recipients:;",
		"no-at-sign",
		"Alice <alice@[192.0.2.1]>",
		"\"unterminated <a@example.com>",
		"Alice <alice@example.com",
		"a@-bad-.com",
		"a@localhost",
		"(comment only)",
		"grp: a@example.com, b@example.org;",
	};
	struct msg m = { .from = { NULL } };

	(void)state;
	expect(&m, "DMARC_PERMERROR", CHK_PERMERROR, NULL, NULL);
	m.from[0] = "a@example.com";
	m.from[1] = "b@example.com";
	struct txn *two = run(&m);
	/* Two From headers: permerror, and FROM_MULTIPLE for the rules. */
	assert_true(txn_has_symbol(two, "DMARC_PERMERROR"));
	assert_true(txn_has_symbol(two, "FROM_MULTIPLE"));
	assert_int_equal(two->dmarc.res, CHK_PERMERROR);
	txn_done(two);
	m.from[1] = NULL;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct txn *t;

		m.from[0] = bad[i];
		t = run(&m);
		if (!txn_has_symbol(t, "DMARC_PERMERROR"))
			fail_msg("From \"%s\" accepted", bad[i]);
		/* Only several addresses make FROM_MULTIPLE. */
		if (txn_has_symbol(t, "FROM_MULTIPLE") !=
		    (strchr(bad[i], ',') != NULL && strchr(bad[i], '@') !=
		    strrchr(bad[i], '@')))
			fail_msg("From \"%s\": FROM_MULTIPLE wrong", bad[i]);
		assert_null(t->from_domain);
		txn_done(t);
	}
}

static void
test_from_forms(void **state)
{
	static const struct {
		const char *value, *domain;
	} ok[] = {
		{ " alice@Example.COM", "example.com" },
		{ "\"Doe, John\" <j@example.com> (comment, with comma)",
		    "example.com" },
		{ "Alice\r\n <a@news.example.com>", "news.example.com" },
		{ "Alice\n\t<a@example.com.>", "example.com" },
		{ "\"a@evil.com\" <a@example.com>", "example.com" },
		{ "\"weird@local\"@example.com", "example.com" },
		{ "(a@evil.com) a@example.com", "example.com" },
		{ "grp: a@example.com;", "example.com" },
		{ "<@relay.org:a@example.com>", "example.com" },
	};
	char out[256];
	const char *why;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		if (chk_dmarc_from_domain(ok[i].value, out, sizeof(out),
		    &why) != 0)
			fail_msg("\"%s\": %s", ok[i].value, why);
		assert_string_equal(out, ok[i].domain);
	}
}

static void
test_spf_identity(void **state)
{
	struct msg m = { .from = { "a@example.com" }, .mail_from =
	    "b@other.org", .spf = CHK_PASS, .spf_identity = "helo",
	    .spf_domain = "mx.example.com" };

	(void)state;
	/* HELO identity does not count for a non-null sender */
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, NULL, NULL);
	/* ... but it is the SPF identity of the null sender */
	m.mail_from = NULL;
	expect(&m, "DMARC_PASS", CHK_PASS, NULL, NULL);
	/* a "mailfrom" result with a null sender is inconsistent: ignored */
	m.spf_identity = "mailfrom";
	expect(&m, "DMARC_FAIL_REJECT", CHK_FAIL, NULL, NULL);
}

static void
test_rerun_replaces(void **state)
{
	struct msg m = { .from = { "a@none.com" } };
	struct txn *t = run(&m);

	(void)state;
	chk_dmarc_run(dm, t);	/* again on the same txn: no leak */
	assert_string_equal(t->from_domain, "none.com");
	txn_done(t);
}

static void
test_psl(void **state)
{
	static const struct {
		const char *name, *org;
	} cases[] = {
		{ "a.b.example.com", "example.com" },
		{ "example.com", "example.com" },
		{ "EXAMPLE.Com.", "example.com" },
		{ "com", "com" },
		{ "x.y.co.uk", "y.co.uk" },
		{ "co.uk", "co.uk" },
		{ "foo.bar.ck", "foo.bar.ck" },
		{ "a.foo.bar.ck", "foo.bar.ck" },
		{ "www.ck", "www.ck" },
		{ "a.www.ck", "www.ck" },
		{ "u.github.io", "u.github.io" },
		{ "a.b.github.io", "b.github.io" },
		{ "a.b.test", "b.test" },
		{ "test", "test" },
	};
	struct psl *p = psl_from_text(psl_text);
	char out[256], err[200];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		assert_int_equal(psl_org_domain(p, cases[i].name, out,
		    sizeof(out)), 0);
		if (strcmp(out, cases[i].org) != 0)
			fail_msg("%s: %s, expected %s", cases[i].name, out,
			    cases[i].org);
	}
	assert_int_equal(psl_org_domain(p, "", out, sizeof(out)), -1);
	assert_int_equal(psl_org_domain(p, "a.example.com", out, 5), -1);
	psl_close(p);
	assert_null(psl_open("/nonexistent/psl.dat", err, sizeof(err)));
	assert_non_null(strstr(err, "nonexistent"));
}

/* A list without wildcard or exception rules, or with no rule at all
 * (found by the dmarc fuzz target: qsort was given a NULL array). */
static void
test_psl_sparse(void **state)
{
	char out[256];
	struct psl *p = psl_from_text("com\n");

	(void)state;
	assert_int_equal(psl_org_domain(p, "a.b.example.com", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	psl_close(p);
	p = psl_from_text("// only a comment\n");
	assert_int_equal(psl_org_domain(p, "a.b.example", out, sizeof(out)), 0);
	assert_string_equal(out, "b.example");
	psl_close(p);
}

static void
test_psl_debian(void **state)
{
	char out[256], err[200];
	struct psl *p, *q;

	(void)state;
	if (access(REAL_PSL, R_OK) != 0) {
		print_message("%s absent (package publicsuffix)\n", REAL_PSL);
		skip();
	}
	p = psl_open(REAL_PSL, err, sizeof(err));
	assert_non_null(p);
	q = psl_open(REAL_PSL, err, sizeof(err));
	assert_ptr_equal(p, q);		/* one load per process */
	assert_int_equal(psl_org_domain(p, "mail.example.co.uk", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "example.co.uk");
	assert_int_equal(psl_org_domain(p, "a.b.example.com", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(psl_org_domain(p, "x.dmarc.test", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "dmarc.test");
	psl_close(q);
	psl_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_spf_relaxed),
		cmocka_unit_test(test_pass_dkim_relaxed),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_policies),
		cmocka_unit_test(test_subdomain_policy),
		cmocka_unit_test(test_pct),
		cmocka_unit_test(test_no_record),
		cmocka_unit_test(test_dns_errors),
		cmocka_unit_test(test_bad_record),
		cmocka_unit_test(test_bad_from),
		cmocka_unit_test(test_from_forms),
		cmocka_unit_test(test_spf_identity),
		cmocka_unit_test(test_rerun_replaces),
		cmocka_unit_test(test_psl),
		cmocka_unit_test(test_psl_sparse),
		cmocka_unit_test(test_psl_debian),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
