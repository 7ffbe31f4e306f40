/*
 * rules_targets_test.c - every rule target and every list kind of
 * mxwarden.rules(5) (policy/rules.c, policy/rules_eval.c): a regex rule
 * and, where the target holds addresses, names or IPs, an in:LIST rule
 * on each of the 14 targets, each with a value that matches and one
 * that does not (tls: with and without TLS, and a front end that gave
 * only one of version and cipher); list entries of every kind
 * (IPv4/IPv6 addresses and CIDRs, domains with and without subdomain
 * matching, addresses, address globs, @domain, file: lists, a local file
 * replacing a list);
 * the built-in lists (whitelist_clients, blacklist_clients,
 * blacklist_from, whitelist_from only with SPF or DKIM for the sender
 * domain); meta rules with each operator. DNS lists run against a
 * static resolver that answers nothing, so no listing can appear.
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

#include "dns.h"
#include "mime.h"
#include "rules.h"
#include "txn.h"

/* write_tmp - text into a new temporary file; its path into path. */
static void
write_tmp(char *path, const char *text)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static struct rules *
load2(const char *text, const char *local)
{
	char p1[] = "/tmp/mxw-rtg-XXXXXX", p2[] = "/tmp/mxw-rtg-XXXXXX";
	char errs[8192] = "";

	write_tmp(p1, text);
	if (local != NULL)
		write_tmp(p2, local);
	struct rules *r = rules_load(p1, local ? p2 : NULL, RULES_JIT, errs, sizeof(errs));
	unlink(p1);
	if (local != NULL)
		unlink(p2);
	if (r == NULL)
		fail_msg("rules: %s", errs);
	return r;
}

static struct rules *
load(const char *text)
{
	return load2(text, NULL);
}


/* ---- connect, HELO, MAIL and RCPT targets ---- */

static const char env_rules[] =
    "list nets4 192.0.2.0/24 203.0.113.7\n"
    "list nets6 2001:db8:1::/48 2001:db8:2::5\n"
    "list dyn .dyn.example static.example\n"
    "list helos .helo.example\n"
    "list senders boss@corp.example *-bounce@lists.example ?x@glob.example\n"
    "list rcpts @local.example\n"
    "rule IP_RX     client_ip   /^192\\.0\\.2\\./       score 1\n"
    "rule IP_V4     client_ip   in:nets4               score 1\n"
    "rule IP_V6     client_ip   in:nets6               score 1\n"
    "rule NAME_RX   client_name /^mail\\d+\\./          score 1\n"
    "rule NAME_LIST client_name in:dyn                 score 1\n"
    "rule HELO_RX   helo        /^localhost$/i         score 1\n"
    "rule HELO_LIST helo        in:helos               score 1\n"
    "rule FROM_RX   from        /^$/                   score 1\n"
    "rule FROM_LIST from        in:senders             score 1\n"
    "rule RCPT_RX   rcpt        /^abuse@/i             score 1\n"
    "rule RCPT_LIST rcpt        in:rcpts               score 1\n";

/* One connection-level value against the connect rules. */
static void
connect_case(const struct rules *r, const char *ip, const char *mta_name,
    const char *iprev_name, const char *want, const char *nowant)
{
	struct txn t = { 0 };

	txn_set_client(&t, ip, 25, mta_name);
	if (iprev_name != NULL)
		t.iprev_name = strdup(iprev_name);
	rules_eval(r, &t, RS_CONNECT, NULL, NULL);
	for (const char *w = want; w != NULL && *w; w += strlen(w) + 1)
		if (txn_symbol_detail(&t, w) == NULL)
			fail_msg("%s (%s): %s missing", ip, iprev_name ? iprev_name :
			    mta_name ? mta_name : "-", w);
	for (const char *w = nowant; w != NULL && *w; w += strlen(w) + 1)
		if (txn_symbol_detail(&t, w) != NULL)
			fail_msg("%s (%s): %s unexpected: %s", ip, iprev_name ?
			    iprev_name : mta_name ? mta_name : "-", w, txn_symbol_detail(&t, w));
	txn_clear_all(&t);
}

static void
test_connect_targets(void **state)
{
	struct rules *r = load(env_rules);

	(void)state;
	/* Strings are NUL-separated lists ending in an empty string. */
	connect_case(r, "192.0.2.9", NULL, NULL, "IP_RX\0IP_V4\0",
	    "IP_V6\0NAME_RX\0NAME_LIST\0");
	connect_case(r, "203.0.113.7", NULL, NULL, "IP_V4\0",
	    "IP_RX\0IP_V6\0");
	connect_case(r, "203.0.113.8", NULL, NULL, "",
	    "IP_RX\0IP_V4\0IP_V6\0");
	connect_case(r, "2001:db8:1:ffff::1", NULL, NULL, "IP_V6\0",
	    "IP_V4\0IP_RX\0");
	connect_case(r, "2001:db8:2::5", NULL, NULL, "IP_V6\0", "IP_V4\0");
	connect_case(r, "2001:db8:2::6", NULL, NULL, "", "IP_V6\0");
	connect_case(r, "2001:db8:3::1", NULL, NULL, "", "IP_V6\0");
	/* An IPv4-mapped IPv6 client is in the IPv4 list, not the IPv6 one. */
	connect_case(r, "::ffff:192.0.2.1", NULL, NULL, "IP_V4\0", "IP_V6\0");
	/* client_name: the verified rDNS name first. */
	connect_case(r, "198.51.100.1", NULL, "mail7.dyn.example",
	    "NAME_RX\0NAME_LIST\0", "IP_V4\0");
	connect_case(r, "198.51.100.1", NULL, "dyn.example", "NAME_LIST\0",
	    "NAME_RX\0");
	connect_case(r, "198.51.100.1", NULL, "static.example", "NAME_LIST\0", "");
	/* "static.example" has no leading dot: not its subdomains. */
	connect_case(r, "198.51.100.1", NULL, "a.static.example", "",
	    "NAME_LIST\0");
	connect_case(r, "198.51.100.1", NULL, "notdyn.example", "",
	    "NAME_LIST\0NAME_RX\0");
	/* Without a verified name, the MTA's name, unless "unknown". */
	connect_case(r, "198.51.100.1", "mail2.dyn.example", NULL,
	    "NAME_RX\0NAME_LIST\0", "");
	connect_case(r, "198.51.100.1", "unknown", NULL, "",
	    "NAME_RX\0NAME_LIST\0");
	rules_free(r);
}

static void
test_envelope_targets(void **state)
{
	struct rules *r = load(env_rules);
	struct txn t = { 0 };

	(void)state;
	txn_set_client(&t, "198.51.100.1", 25, NULL);
	txn_set_helo(&t, "LocalHost");
	rules_eval(r, &t, RS_HELO, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "HELO_RX"));
	assert_null(txn_symbol_detail(&t, "HELO_LIST"));
	txn_clear_all(&t);

	struct txn h = { 0 };
	txn_set_helo(&h, "MX1.Helo.Example");
	rules_eval(r, &h, RS_HELO, NULL, NULL);
	assert_null(txn_symbol_detail(&h, "HELO_RX"));
	assert_string_equal(txn_symbol_detail(&h, "HELO_LIST"),
	    "helo MX1.Helo.Example in helos");
	txn_clear_all(&h);

	/* from: the null sender is "" (regex), not in any list. */
	struct txn n = { 0 };
	txn_set_mail(&n, "<>");
	rules_eval(r, &n, RS_MAIL, NULL, NULL);
	assert_non_null(txn_symbol_detail(&n, "FROM_RX"));
	assert_null(txn_symbol_detail(&n, "FROM_LIST"));
	txn_clear_all(&n);

	static const char *const in[] = { "Boss@Corp.Example",
	    "news-bounce@lists.example", "ax@glob.example" };
	static const char *const out[] = { "boss@sub.corp.example",
	    "news-bounce@x.lists.example", "axx@glob.example",
	    "x@glob.example", "corp.example" };
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct txn m = { 0 };
		txn_set_mail(&m, in[i]);
		rules_eval(r, &m, RS_MAIL, NULL, NULL);
		if (txn_symbol_detail(&m, "FROM_LIST") == NULL)
			fail_msg("%s not in senders", in[i]);
		assert_null(txn_symbol_detail(&m, "FROM_RX"));
		txn_clear_all(&m);
	}
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		struct txn m = { 0 };
		txn_set_mail(&m, out[i]);
		rules_eval(r, &m, RS_MAIL, NULL, NULL);
		if (txn_symbol_detail(&m, "FROM_LIST") != NULL)
			fail_msg("%s in senders", out[i]);
		txn_clear_all(&m);
	}

	/* rcpt: each recipient as it arrives (only the newest is tested). */
	struct txn c = { 0 };
	txn_add_rcpt(&c, "<bob@other.example>");
	rules_eval(r, &c, RS_RCPT, NULL, NULL);
	assert_null(txn_symbol_detail(&c, "RCPT_RX"));
	assert_null(txn_symbol_detail(&c, "RCPT_LIST"));
	txn_add_rcpt(&c, "<bob@sub.local.example>");	/* @domain: exact */
	rules_eval(r, &c, RS_RCPT, NULL, NULL);
	assert_null(txn_symbol_detail(&c, "RCPT_LIST"));
	txn_add_rcpt(&c, "<bob@LOCAL.example>");
	rules_eval(r, &c, RS_RCPT, NULL, NULL);
	assert_non_null(txn_symbol_detail(&c, "RCPT_LIST"));
	assert_null(txn_symbol_detail(&c, "RCPT_RX"));
	txn_add_rcpt(&c, "<Abuse@other.example>");
	rules_eval(r, &c, RS_RCPT, NULL, NULL);
	assert_non_null(txn_symbol_detail(&c, "RCPT_RX"));
	txn_clear_all(&c);
	rules_free(r);
}

/* ---- tls: "VERSION CIPHER" or "none", tested at MAIL ---- */

static const char tls_rules[] =
    "rule NO_TLS   tls /^none$/             score 1.0\n"
    "rule OLD_TLS  tls /^TLSv1(\\.[01])? /  score 2\n"
    "rule TLS13    tls /^TLSv1\\.3 TLS_AES_256_GCM_SHA384$/ score 0.1\n"
    "rule TLS_UNK  tls /^(unknown \\S+|\\S+ unknown)$/ score 0.1\n";

/* tls_case - a MAIL with TLS facts version/cipher (NULL: not given);
 * the symbols in want must be there, every other tls rule absent. */
static void
tls_case(const struct rules *r, const char *version, const char *cipher,
    const char *want, const char *want_detail)
{
	static const char *const all[] = { "NO_TLS", "OLD_TLS", "TLS13",
	    "TLS_UNK" };
	struct txn t = { 0 };

	txn_set_client(&t, "198.51.100.1", 25, NULL);
	txn_set_tls(&t, version, cipher);
	/* Not before MAIL: the HELO stage leaves the tls target alone. */
	rules_eval(r, &t, RS_HELO, NULL, NULL);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (txn_symbol_detail(&t, all[i]) != NULL)
			fail_msg("%s at HELO", all[i]);
	txn_set_mail(&t, "a@sender.example");
	rules_eval(r, &t, RS_MAIL, NULL, NULL);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		char w[32];
		snprintf(w, sizeof(w), " %s ", all[i]);
		int wanted = strstr(want, w) != NULL;
		if ((txn_symbol_detail(&t, all[i]) != NULL) != wanted)
			fail_msg("%s/%s: %s %s", version ? version : "-",
			    cipher ? cipher : "-", all[i],
			    wanted ? "missing" : "unexpected");
	}
	if (want_detail != NULL) {
		const char *sym = strchr(want + 1, ' ');
		char name[32];
		snprintf(name, sizeof(name), "%.*s", (int)(sym - want - 1),
		    want + 1);
		assert_string_equal(txn_symbol_detail(&t, name), want_detail);
	}
	txn_clear_all(&t);
}

static void
test_tls_target(void **state)
{
	struct rules *r = load(tls_rules);

	(void)state;
	/* want: " SYM SYM " (the first one's detail checked when given). */
	tls_case(r, NULL, NULL, " NO_TLS ", "tls \"none\"");
	tls_case(r, "", "", " NO_TLS ", NULL);
	tls_case(r, "TLSv1.3", "TLS_AES_256_GCM_SHA384", " TLS13 ",
	    "tls \"TLSv1.3 TLS_AES_256_GCM_SHA384\"");
	tls_case(r, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", " ", NULL);
	/* The detail holds what matched. */
	tls_case(r, "TLSv1", "ECDHE-RSA-AES128-SHA", " OLD_TLS ",
	    "tls \"TLSv1 \"");
	tls_case(r, "TLSv1.1", "AES128-SHA", " OLD_TLS ", NULL);
	/* A front end that knows only one part: TLS all the same. */
	tls_case(r, "TLSv1.0", NULL, " TLS_UNK OLD_TLS ",
	    "tls \"TLSv1.0 unknown\"");
	tls_case(r, NULL, "TLS_AES_128_GCM_SHA256", " TLS_UNK ",
	    "tls \"unknown TLS_AES_128_GCM_SHA256\"");

	/* A new message on a TLS connection tests it again. */
	struct txn t = { 0 };
	txn_set_tls(&t, "TLSv1", "AES128-SHA");
	txn_set_mail(&t, "a@sender.example");
	rules_eval(r, &t, RS_MAIL, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "OLD_TLS"));
	txn_clear_message(&t);
	assert_null(txn_symbol_detail(&t, "OLD_TLS"));
	txn_set_mail(&t, "b@sender.example");
	rules_eval(r, &t, RS_MAIL, NULL, NULL);
	assert_non_null(txn_symbol_detail(&t, "OLD_TLS"));
	assert_null(txn_symbol_detail(&t, "NO_TLS"));
	txn_clear_all(&t);
	rules_free(r);
}

/* The unknown-target error names tls among the targets. */
static void
test_tls_target_error(void **state)
{
	char p[] = "/tmp/mxw-rtg-XXXXXX", errs[2048] = "";

	(void)state;
	write_tmp(p, "rule R ssl /x/ score 1\n");
	struct rules *r = rules_load(p, NULL, RULES_JIT, errs, sizeof(errs));
	unlink(p);
	assert_null(r);
	if (strstr(errs, "unknown target \"ssl\"") == NULL ||
	    strstr(errs, " tls,") == NULL)
		fail_msg("error text: %s", errs);
}

/* ---- end-of-message targets ---- */

static const char eom_rules[] =
    "list phish_from .paypal-secure.example\n"
    "rule H_NAME    header:X-Campaign /^spring\\s+sale$/i      score 1\n"
    "rule H_SECOND  header:Received   /from evil\\.example/   score 1\n"
    "rule H_2047    header:X-Note     /grüße/iu               score 1\n"
    "rule H_ALL     header:*          /^Reply-To: .*@freemail\\.example/i score 1\n"
    "rule H_ALLNAME header:*          /^X-Campaign: /         score 1\n"
    "rule H_NONE    header:*          /^X-Absent: /           score 1\n"
    "rule SUBJ      subject           /^Önskar dig/u          score 1\n"
    "rule FH_NAME   from_header       /^\"?PayPal Service/     score 1\n"
    "rule FH_ADDR   from_header       /<[^>]*@[a-z.]*paypal-secure\\./i score 1\n"
    "rule FH_LIST   from_header       in:phish_from           score 1\n"
    "rule BODY_QP   body              /unsubscribe now/       score 1\n"
    "rule BODY_HTML body              /^\\s*click\\s+here to claim/m score 1\n"
    "rule BODY_TAG  body              /<b>/                    score 1\n"
    "rule RAW_QP    raw_body          /unsub=\\r?\\nscribe/     score 1\n"
    "rule RAW_B64   raw_body          /PGI\\+Y2xpY2s/          score 1\n"
    "rule ATT_NAME  attachment_name   /^rechnung ä\\.zip$/iu   score 1\n"
    "rule ATT_TYPE  attachment_type   /^application\\/zip$/   score 1\n"
    "rule ATT_NONE  attachment_type   /^image\\//             score 1\n";

static const char eom_body[] =
    "--b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Please unsub=\nscribe now.\n"
    "--b\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    /* "<p><b>click</b> here to claim</p>" */
    "PHA+PGI+Y2xpY2s8L2I+IGhlcmUgdG8gY2xhaW08L3A+Cg==\n"
    "--b\n"
    "Content-Type: application/zip\n"
    "Content-Disposition: attachment;\n"
    " filename*=utf-8''Rechnung%20%C3%A4.zip\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "UEsDBA==\n"
    "--b--\n";

static void
add_eom_headers(struct txn *t, const char *from)
{
	txn_add_header(t, "Received", " from good.example by mx");
	txn_add_header(t, "Received", " from evil.example by relay");
	txn_add_header(t, "From", from);
	txn_add_header(t, "Subject", " =?utf-8?B?w5Zuc2thciBkaWcgZW4gdHJldmxpZyBoZWxn?=");
	txn_add_header(t, "X-Campaign", " Spring\r\n\tSale");
	txn_add_header(t, "X-Note", " =?iso-8859-1?Q?Gr=FC=DFe?=");
	txn_add_header(t, "Reply-To", " <x@freemail.example>");
	txn_add_header(t, "MIME-Version", " 1.0");
	txn_add_header(t, "Content-Type", " multipart/mixed; boundary=\"b\"");
}

static struct mime *
eom_mime(const struct txn *t, const char *body)
{
	struct mime *m = rules_mime_new(t, 1 << 20);

	mime_feed(m, (const unsigned char *)body, strlen(body));
	mime_finish(m);
	return m;
}

static void
test_eom_targets(void **state)
{
	struct rules *r = load(eom_rules);
	struct txn t = { 0 };
	static const char *const want[] = { "H_NAME", "H_SECOND", "H_2047",
	    "H_ALL", "H_ALLNAME", "SUBJ", "FH_NAME", "FH_ADDR", "FH_LIST",
	    "BODY_QP", "BODY_HTML", "RAW_QP", "RAW_B64", "ATT_NAME", "ATT_TYPE" };

	(void)state;
	add_eom_headers(&t,
	    " \"PayPal Service\" <service@www.PayPal-Secure.example>");
	struct mime *m = eom_mime(&t, eom_body);
	rules_eval(r, &t, RS_EOM, m, NULL);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (txn_symbol_detail(&t, want[i]) == NULL)
			fail_msg("%s missing", want[i]);
	/* HTML tags are stripped from body; no image attachment; no
	 * X-Absent header. */
	assert_null(txn_symbol_detail(&t, "BODY_TAG"));
	assert_null(txn_symbol_detail(&t, "ATT_NONE"));
	assert_null(txn_symbol_detail(&t, "H_NONE"));
	assert_null(txn_symbol_detail(&t, "RULES_LIMIT"));
	assert_string_equal(txn_symbol_detail(&t, "H_SECOND"),
	    "Received \"from evil.example\"");
	assert_string_equal(txn_symbol_detail(&t, "H_ALL"),
	    "header Reply-To \"Reply-To: <x@freemail.example\"");
	assert_string_equal(txn_symbol_detail(&t, "FH_LIST"),
	    "from_header service@www.paypal-secure.example in phish_from");
	mime_free(m);
	txn_clear_all(&t);

	/* The same message from someone else and without the second
	 * Received, the HTML part or the attachment: none of those. */
	struct txn u = { 0 };
	txn_add_header(&u, "From", " Service <service@paypal.example>");
	txn_add_header(&u, "Received", " from good.example by mx");
	txn_add_header(&u, "X-Campaigns", " Spring sale");
	txn_add_header(&u, "Subject", " Onskar dig");
	m = eom_mime(&u, "plain text, unsubscribe later\n");
	rules_eval(r, &u, RS_EOM, m, NULL);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (txn_symbol_detail(&u, want[i]) != NULL)
			fail_msg("%s unexpected: %s", want[i], txn_symbol_detail(&u, want[i]));
	mime_free(m);
	txn_clear_all(&u);
	rules_free(r);
}

/* ---- list kinds ---- */

static void
test_list_kinds(void **state)
{
	char lf[] = "/tmp/mxw-rtg-list-XXXXXX";
	char text[1024];

	(void)state;
	write_tmp(lf, "# partner networks\n"
	    "\n"
	    "10.20.0.0/16   # office\n"
	    "  2001:db8:aa::/48\n"
	    ".partner.example\n"
	    "ceo@corp.example\n"
	    "*@newsletter.example  # bulk\n"
	    "@shop.example\n");
	snprintf(text, sizeof(text),
	    "list filelist file:%s\n"
	    "list mixed 192.0.2.1 file:%s\n"
	    "list replaced 192.0.2.0/24\n"
	    "list v6host ::1\n", lf, lf);
	struct rules *r = load2(text, "list replaced 198.51.100.0/24\n");
	unlink(lf);

	static const struct { const char *list, *value; int in; } c[] = {
		{ "filelist", "10.20.255.1", 1 },
		{ "filelist", "10.21.0.1", 0 },
		{ "filelist", "2001:db8:aa:1::9", 1 },
		{ "filelist", "2001:db8:ab::9", 0 },
		{ "filelist", "partner.example", 1 },
		{ "filelist", "mx.partner.example", 1 },
		{ "filelist", "x@mx.partner.example", 1 },
		{ "filelist", "notpartner.example", 0 },
		{ "filelist", "CEO@corp.example", 1 },
		{ "filelist", "cfo@corp.example", 0 },
		{ "filelist", "corp.example", 0 },
		{ "filelist", "news@newsletter.example", 1 },
		{ "filelist", "news@a.newsletter.example", 0 },
		{ "filelist", "a@shop.example", 1 },
		{ "filelist", "a@x.shop.example", 0 },
		{ "filelist", "# partner networks", 0 },
		{ "filelist", "office", 0 },
		{ "filelist", "bulk", 0 },
		{ "mixed", "192.0.2.1", 1 },
		{ "mixed", "192.0.2.2", 0 },
		{ "mixed", "10.20.1.1", 1 },
		{ "mixed", "a@shop.example", 1 },
		/* The local file's list replaces the shipped one. */
		{ "replaced", "198.51.100.3", 1 },
		{ "replaced", "192.0.2.3", 0 },
		{ "v6host", "::1", 1 },
		{ "v6host", "0:0:0:0:0:0:0:1", 1 },
		{ "v6host", "::2", 0 },
		{ "v6host", "127.0.0.1", 0 },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (rules_list_match(r, c[i].list, c[i].value) != c[i].in)
			fail_msg("%s in %s: want %d", c[i].value, c[i].list, c[i].in);
	assert_int_equal(rules_list_count(r, "filelist"), 6);
	assert_int_equal(rules_list_count(r, "replaced"), 1);
	rules_free(r);
}

/* A list file that is missing or holds a bad entry is a load error
 * with file:line. */
static void
test_list_file_errors(void **state)
{
	char lf[] = "/tmp/mxw-rtg-bad-XXXXXX", p[] = "/tmp/mxw-rtg-XXXXXX";
	char text[512], errs[2048] = "", want[256];

	(void)state;
	write_tmp(lf, "10.0.0.0/8\n10.0.0.0/33\n");
	snprintf(text, sizeof(text), "list a file:%s\nlist b file:%s.none\n",
	    lf, lf);
	write_tmp(p, text);
	struct rules *r = rules_load(p, NULL, RULES_JIT, errs, sizeof(errs));
	unlink(p);
	unlink(lf);
	assert_null(r);
	snprintf(want, sizeof(want), "%s:2: list a: \"10.0.0.0/33\"", lf);
	if (strstr(errs, want) == NULL)
		fail_msg("want %s in: %s", want, errs);
	snprintf(want, sizeof(want), "%s:2: list b: cannot open %s.none", p, lf);
	if (strstr(errs, want) == NULL)
		fail_msg("want %s in: %s", want, errs);
}

/* ---- built-in lists ---- */

static const char builtin_rules[] =
    "list whitelist_clients 192.0.2.0/28 2001:db8:5::/64\n"
    "list blacklist_clients 203.0.113.0/24 2001:db8:6::1\n"
    "list blacklist_from *@spam.example @junk.example\n"
    "list whitelist_from boss@corp.example .partner.example\n";

static void
test_builtin_clients(void **state)
{
	struct rules *r = load(builtin_rules);
	struct dns *d = dns_new_static(NULL, 0);

	(void)state;
	static const struct { const char *ip, *sym; } c[] = {
		{ "192.0.2.15", "WHITELIST_CLIENT" },
		{ "192.0.2.16", NULL },
		{ "2001:db8:5::abcd", "WHITELIST_CLIENT" },
		{ "2001:db8:5:1::1", NULL },
		{ "203.0.113.200", "BLACKLIST_CLIENT" },
		{ "2001:db8:6::1", "BLACKLIST_CLIENT" },
		{ "2001:db8:6::2", NULL },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct txn t = { 0 };
		txn_set_client(&t, c[i].ip, 25, NULL);
		rules_eval(r, &t, RS_CONNECT, NULL, d);
		const char *w = txn_symbol_detail(&t, "WHITELIST_CLIENT");
		const char *b = txn_symbol_detail(&t, "BLACKLIST_CLIENT");
		if (c[i].sym == NULL ? (w || b) :
		    txn_symbol_detail(&t, c[i].sym) == NULL || t.nsym != 1)
			fail_msg("%s: want %s, got %zu symbols (%s)", c[i].ip,
			    c[i].sym ? c[i].sym : "none", t.nsym,
			    t.nsym ? t.sym[0].name : "");
		txn_clear_all(&t);
	}
	/* Their default actions (shipped rules set them; a bare set has
	 * none, so only the symbols are tested here). */
	dns_free(d);
	rules_free(r);
}

static void
test_blacklist_from(void **state)
{
	struct rules *r = load(builtin_rules);
	struct txn t = { 0 };

	(void)state;
	/* Envelope sender at MAIL. */
	txn_set_mail(&t, "<a@Spam.example>");
	rules_eval(r, &t, RS_MAIL, NULL, NULL);
	assert_string_equal(txn_symbol_detail(&t, "BLACKLIST_FROM"), "sender a@spam.example");
	txn_clear_all(&t);
	/* From header at the end of the message. */
	struct txn u = { 0 };
	txn_set_mail(&u, "<a@good.example>");
	rules_eval(r, &u, RS_MAIL, NULL, NULL);
	assert_null(txn_symbol_detail(&u, "BLACKLIST_FROM"));
	txn_add_header(&u, "From", " Junk <sales@JUNK.example>");
	rules_eval(r, &u, RS_EOM, NULL, NULL);
	assert_string_equal(txn_symbol_detail(&u, "BLACKLIST_FROM"), "From sales@junk.example");
	txn_clear_all(&u);
	/* A subdomain of an @domain entry is not listed. */
	struct txn w = { 0 };
	txn_set_mail(&w, "<a@x.junk.example>");
	txn_add_header(&w, "From", " <a@x.junk.example>");
	rules_eval(r, &w, RS_MAIL, NULL, NULL);
	rules_eval(r, &w, RS_EOM, NULL, NULL);
	assert_null(txn_symbol_detail(&w, "BLACKLIST_FROM"));
	txn_clear_all(&w);
	rules_free(r);
}

static void
set_spf(struct txn *t, enum chk_res res, const char *domain,
    const char *identity)
{
	t->spf.res = res;
	t->spf.domain = strdup(domain);
	t->spf.identity = strdup(identity);
}

/* whitelist_from: SPF pass for the envelope domain at MAIL; DKIM pass
 * for the From (or envelope) domain at the end; never a forged From. */
static void
test_whitelist_from(void **state)
{
	struct rules *r = load(builtin_rules);

	(void)state;
	/* SPF pass for the listed envelope sender's domain. */
	struct txn a = { 0 };
	txn_set_mail(&a, "<Boss@corp.example>");
	set_spf(&a, CHK_PASS, "corp.example", "mailfrom");
	rules_eval(r, &a, RS_MAIL, NULL, NULL);
	assert_non_null(strstr(txn_symbol_detail(&a, "WHITELIST_FROM"), "SPF pass"));
	txn_clear_all(&a);

	/* SPF pass, but of the HELO identity, or softfail, or for another
	 * listed address of the domain: no. */
	static const struct { const char *from; enum chk_res res;
	    const char *id; } no[] = {
		{ "boss@corp.example", CHK_PASS, "helo" },
		{ "boss@corp.example", CHK_SOFTFAIL, "mailfrom" },
		{ "intern@corp.example", CHK_PASS, "mailfrom" },
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		struct txn b = { 0 };
		txn_set_mail(&b, no[i].from);
		set_spf(&b, no[i].res, "corp.example", no[i].id);
		rules_eval(r, &b, RS_MAIL, NULL, NULL);
		rules_eval(r, &b, RS_EOM, NULL, NULL);
		if (txn_symbol_detail(&b, "WHITELIST_FROM") != NULL)
			fail_msg("case %zu whitelisted: %s", i,
			    txn_symbol_detail(&b, "WHITELIST_FROM"));
		txn_clear_all(&b);
	}

	/* Forged: listed From, envelope from elsewhere with SPF pass for
	 * that other domain, a DKIM pass by that other domain too. */
	struct txn f = { 0 };
	struct txn_dkim_sig other = { .res = CHK_PASS, .domain = "bulk.example" };
	txn_set_mail(&f, "<x@bulk.example>");
	set_spf(&f, CHK_PASS, "bulk.example", "mailfrom");
	rules_eval(r, &f, RS_MAIL, NULL, NULL);
	txn_add_header(&f, "From", " Boss <boss@corp.example>");
	f.dkim = &other;
	f.ndkim = 1;
	rules_eval(r, &f, RS_EOM, NULL, NULL);
	assert_null(txn_symbol_detail(&f, "WHITELIST_FROM"));
	/* A failing signature by the From domain does not count either. */
	struct txn_dkim_sig bad[2] = { other,
	    { .res = CHK_FAIL, .domain = "corp.example" } };
	f.dkim = bad;
	f.ndkim = 2;
	rules_eval(r, &f, RS_EOM, NULL, NULL);
	assert_null(txn_symbol_detail(&f, "WHITELIST_FROM"));
	/* Nor a pass by a one-label parent (a public suffix). */
	struct txn_dkim_sig tld = { .res = CHK_PASS, .domain = "example" };
	f.dkim = &tld;
	f.ndkim = 1;
	rules_eval(r, &f, RS_EOM, NULL, NULL);
	assert_null(txn_symbol_detail(&f, "WHITELIST_FROM"));
	/* A passing one by the From domain: whitelisted. */
	struct txn_dkim_sig good[2] = { other,
	    { .res = CHK_PASS, .domain = "Corp.Example" } };
	f.dkim = good;
	f.ndkim = 2;
	rules_eval(r, &f, RS_EOM, NULL, NULL);
	assert_string_equal(txn_symbol_detail(&f, "WHITELIST_FROM"),
	    "From boss@corp.example, DKIM pass");
	f.dkim = NULL;
	f.ndkim = 0;
	txn_clear_all(&f);

	/* .partner.example: DKIM by the parent of the From's domain. */
	struct txn p = { 0 };
	struct txn_dkim_sig par = { .res = CHK_PASS, .domain = "partner.example" };
	txn_set_mail(&p, "<>");
	txn_add_header(&p, "From", " <news@mail.partner.example>");
	p.dkim = &par;
	p.ndkim = 1;
	rules_eval(r, &p, RS_EOM, NULL, NULL);
	assert_non_null(txn_symbol_detail(&p, "WHITELIST_FROM"));
	p.dkim = NULL;
	p.ndkim = 0;
	txn_clear_all(&p);

	/* The envelope sender listed and DKIM-authenticated (the From
	 * header not listed): whitelisted at the end. */
	struct txn e = { 0 };
	struct txn_dkim_sig env = { .res = CHK_PASS, .domain = "corp.example" };
	txn_set_mail(&e, "<boss@corp.example>");
	txn_add_header(&e, "From", " <someone@else.example>");
	e.dkim = &env;
	e.ndkim = 1;
	rules_eval(r, &e, RS_MAIL, NULL, NULL);
	assert_null(txn_symbol_detail(&e, "WHITELIST_FROM"));
	rules_eval(r, &e, RS_EOM, NULL, NULL);
	assert_string_equal(txn_symbol_detail(&e, "WHITELIST_FROM"),
	    "sender boss@corp.example, DKIM pass");
	e.dkim = NULL;
	e.ndkim = 0;
	txn_clear_all(&e);
	rules_free(r);
}

/* ---- meta rules ---- */

static void
test_meta_operators(void **state)
{
	struct rules *r = load(
	    "meta M_AND   A && B          score 1\n"
	    "meta M_OR    A || B          score 1\n"
	    "meta M_NOT   !A              score 1\n"
	    "meta M_PREC  A || B && C     score 1\n"
	    "meta M_PAREN (A || B) && C   score 1\n"
	    "meta M_NNOT  !(A && !B)      score 1\n"
	    "meta M_META  M_AND && !C     score 1\n");
	static const struct {
		const char *present;	/* of A, B, C */
		const char *want;	/* metas expected, the others absent */
	} c[] = {
		{ "",    "M_NOT M_NNOT" },
		{ "A",   "M_OR M_PREC" },
		{ "B",   "M_OR M_NOT M_NNOT" },
		{ "C",   "M_NOT M_NNOT" },
		{ "AB",  "M_AND M_OR M_PREC M_NNOT M_META" },
		{ "BC",  "M_OR M_NOT M_PREC M_PAREN M_NNOT" },
		{ "AC",  "M_OR M_PREC M_PAREN" },
		{ "ABC", "M_AND M_OR M_PREC M_PAREN M_NNOT" },
	};
	static const char *const metas[] = { "M_AND", "M_OR", "M_NOT",
	    "M_PREC", "M_PAREN", "M_NNOT", "M_META" };

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct txn t = { 0 };
		for (const char *p = c[i].present; *p; p++) {
			char s[2] = { *p, '\0' };
			txn_symbol(&t, s, NULL);
		}
		rules_eval_meta(r, &t);
		for (size_t k = 0; k < sizeof(metas) / sizeof(metas[0]); k++) {
			char w[16];
			snprintf(w, sizeof(w), "%s ", metas[k]);
			char all[64];
			snprintf(all, sizeof(all), "%s ", c[i].want);
			int want = strstr(all, w) != NULL;
			if ((txn_symbol_detail(&t, metas[k]) != NULL) != want)
				fail_msg("{%s}: %s %s", c[i].present, metas[k],
				    want ? "missing" : "unexpected");
		}
		txn_clear_all(&t);
	}
	rules_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_targets),
		cmocka_unit_test(test_envelope_targets),
		cmocka_unit_test(test_tls_target),
		cmocka_unit_test(test_tls_target_error),
		cmocka_unit_test(test_eom_targets),
		cmocka_unit_test(test_list_kinds),
		cmocka_unit_test(test_list_file_errors),
		cmocka_unit_test(test_builtin_clients),
		cmocka_unit_test(test_blacklist_from),
		cmocka_unit_test(test_whitelist_from),
		cmocka_unit_test(test_meta_operators),
	};
	return cmocka_run_group_tests_name("rules_targets", tests, NULL, NULL);
}
