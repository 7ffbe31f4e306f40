/*
 * engine_test.c - the engine end to end over a static resolver: stages,
 * actions, thresholds, header edits, snapshots (policy/engine.c).
 * The real-DNS, real-MTA versions of these live in tests/integration.
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

#include "config.h"
#include "dns.h"
#include "engine.h"
#include "rules.h"
#include "txn.h"

static const struct dns_static_rr zone[] = {
	{ "ok.example", DNS_T_MX, "10 mx.ok.example", DNS_OK },
	{ "mx.ok.example", DNS_T_A, "192.0.2.25", DNS_OK },
	{ "ok.example", DNS_T_TXT, "v=spf1 ip4:192.0.2.0/24 -all", DNS_OK },
	{ "nullmx.example", DNS_T_MX, "0 .", DNS_OK },
	{ "broken.example", 0, NULL, DNS_SERVFAIL },
	{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, "mail.ok.example", DNS_OK },
	{ "mail.ok.example", DNS_T_A, "192.0.2.10", DNS_OK },
};

static const char *rules_text =
	"threshold add_header 5\n"
	"threshold reject 15\n"
	"list internal_networks 10.0.0.0/8\n"
	"score SPF_FAIL 3\n"
	"score SPF_PASS -0.5\n"
	"score HELO_NOT_FQDN 2.5\n"
	"score IPREV_NONE 2\n"
	"action SENDER_NXDOMAIN reject \"550 5.1.8 Sender domain %{from_domain} does not exist\"\n"
	"action SENDER_NULL_MX reject \"556 5.1.10 No mail from a null MX domain\"\n"
	"action SENDER_TEMPERROR tempfail \"451 4.1.8 Sender domain lookup failed\"\n";

struct fixture {
	struct eng	*e;
	char		 rules_path[64];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[4096];
	int fd;

	strcpy(f->rules_path, "/tmp/mxw-eng-XXXXXX");
	fd = mkstemp(f->rules_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, rules_text, strlen(rules_text)),
	    (ssize_t)strlen(rules_text));
	close(fd);
	char *over[] = { "hostname=mx.test.example", "authserv_id=mx.test.example",
		"local_rules_file=" };
	struct cfg *c = cfg_load(NULL, over, 3, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	struct rules *r = rules_load(f->rules_path, NULL, RULES_JIT, err, sizeof(err));
	if (r == NULL)
		fail_msg("%s", err);
	struct dns *d = dns_new_static(zone, sizeof(zone) / sizeof(zone[0]));
	assert_non_null(d);
	f->e = eng_new_dns(c, r, d, err, sizeof(err));
	if (f->e == NULL)
		fail_msg("%s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	eng_free(f->e);
	unlink(f->rules_path);
	free(f);
	return 0;
}

/* start - connect + HELO + MAIL; returns the action at MAIL. */
static enum verdict_action
start(struct txn *t, const char *ip, const char *helo, const char *from,
    struct verdict *v)
{
	enum verdict_action a;

	txn_set_client(t, ip, 40000, NULL);
	if ((a = eng_event(t, TXN_EV_CONNECT, v)) != VERDICT_CONTINUE)
		return a;
	txn_set_helo(t, helo);
	if ((a = eng_event(t, TXN_EV_HELO, v)) != VERDICT_CONTINUE)
		return a;
	txn_set_mail(t, from);
	return eng_event(t, TXN_EV_MAIL, v);
}

static void
message(struct txn *t, const char *const *hdrs, struct verdict *v)
{
	for (size_t i = 0; hdrs[i] != NULL; i += 2) {
		txn_add_header(t, hdrs[i], hdrs[i + 1]);
		assert_int_equal(eng_event(t, TXN_EV_HEADER, v), VERDICT_CONTINUE);
	}
	assert_int_equal(eng_event(t, TXN_EV_EOH, v), VERDICT_CONTINUE);
	const char *body = "Hello.\r\n";
	eng_body(t, (const unsigned char *)body, strlen(body), v);
	eng_event(t, TXN_EV_EOM, v);
}

static const struct txn_hdrop *
find_op(const struct txn *t, enum txn_hdrop_kind k, const char *name, int n)
{
	for (size_t i = 0; i < t->nhdrop; i++)
		if (t->hdrop[i].kind == k && strcmp(t->hdrop[i].name, name) == 0 &&
		    n-- == 0)
			return &t->hdrop[i];
	return NULL;
}

static void
test_sender_nxdomain_rejected_at_mail(void **state)
{
	struct fixture *f = *state;
	struct txn *t = eng_txn_new(f->e);
	struct verdict v;

	assert_int_equal(start(t, "192.0.2.10", "mail.ok.example",
	    "<a@nope.example>", &v), VERDICT_REJECT);
	assert_string_equal(v.rcode, "550");
	assert_string_equal(v.xcode, "5.1.8");
	assert_string_equal(v.text, "Sender domain nope.example does not exist");
	assert_string_equal(v.symbol, "SENDER_NXDOMAIN");
	eng_txn_free(t);
}

static void
test_null_mx_and_temperror(void **state)
{
	struct fixture *f = *state;
	struct txn *t = eng_txn_new(f->e);
	struct verdict v;

	assert_int_equal(start(t, "192.0.2.10", "mail.ok.example",
	    "<a@nullmx.example>", &v), VERDICT_REJECT);
	assert_string_equal(v.rcode, "556");
	assert_string_equal(v.xcode, "5.1.10");
	/* RSET and a new MAIL in the same connection. */
	eng_txn_reset(t);
	txn_set_mail(t, "<b@broken.example>");
	assert_int_equal(eng_event(t, TXN_EV_MAIL, &v), VERDICT_TEMPFAIL);
	assert_string_equal(v.rcode, "451");
	assert_string_equal(v.xcode, "4.1.8");
	eng_txn_free(t);
}

static void
test_pass_with_headers(void **state)
{
	struct fixture *f = *state;
	struct txn *t = eng_txn_new(f->e);
	struct verdict v;
	static const char *const hdrs[] = {
		"Authentication-Results", " mx.test.example; spf=pass (forged)",
		"Authentication-Results", " other.example; spf=fail",
		"authentication-results", " MX.TEST.EXAMPLE; dkim=pass",
		"X-Spam-Flag", " NO",
		"From", " <a@ok.example>",
		"Subject", " hi",
		NULL,
	};

	assert_int_equal(start(t, "192.0.2.10", "mail.ok.example",
	    "<a@ok.example>", &v), VERDICT_CONTINUE);
	txn_add_rcpt(t, "<b@dest.example>");
	assert_int_equal(eng_event(t, TXN_EV_RCPT, &v), VERDICT_CONTINUE);
	message(t, hdrs, &v);
	assert_int_equal(v.action, VERDICT_ACCEPT);
	assert_int_equal(t->spf.res, CHK_PASS);
	assert_int_equal(t->iprev, CHK_PASS);
	assert_true(txn_has_symbol(t, "SPF_PASS"));
	/* The forged A-R headers (1st and 3rd occurrence) go, the other stays. */
	const struct txn_hdrop *d0 = find_op(t, TXN_HDR_DELETE,
	    "Authentication-Results", 0);
	const struct txn_hdrop *d1 = find_op(t, TXN_HDR_DELETE,
	    "authentication-results", 0);
	assert_non_null(d0);
	assert_int_equal(d0->index, 1);
	assert_non_null(d1);
	assert_int_equal(d1->index, 3);
	assert_null(find_op(t, TXN_HDR_DELETE, "Authentication-Results", 1));
	const struct txn_hdrop *flag = find_op(t, TXN_HDR_DELETE, "X-Spam-Flag", 0);
	assert_non_null(flag);
	const struct txn_hdrop *ar = find_op(t, TXN_HDR_INSERT,
	    "Authentication-Results", 0);
	assert_non_null(ar);
	assert_int_equal(ar->index, 0);
	assert_non_null(strstr(ar->value, "mx.test.example;"));
	if (strstr(ar->value, "spf=pass (") == NULL ||
	    strstr(ar->value, ") smtp.mailfrom=a@ok.example;") == NULL ||
	    strstr(ar->value, "dmarc=none header.from=ok.example") == NULL)
		fail_msg("A-R: %s", ar->value);
	assert_non_null(strstr(ar->value, "iprev=pass (mail.ok.example)"));
	const struct txn_hdrop *st = find_op(t, TXN_HDR_ADD, "X-Spam-Status", 0);
	assert_non_null(st);
	assert_true(strncmp(st->value, "No, score=", 10) == 0);
	assert_null(find_op(t, TXN_HDR_ADD, "X-Spam-Flag", 0));
	eng_txn_free(t);
}

static void
test_score_marks_spam(void **state)
{
	struct fixture *f = *state;
	struct txn *t = eng_txn_new(f->e);
	struct verdict v;
	static const char *const hdrs[] = { "From", " <a@ok.example>", NULL };

	/* No PTR (IPREV_NONE 2) + bare HELO (HELO_NOT_FQDN 2.5) + SPF fail
	 * (3) = 7.5 >= add_header 5. */
	assert_int_equal(start(t, "198.51.100.7", "bogus", "<a@ok.example>", &v),
	    VERDICT_CONTINUE);
	message(t, hdrs, &v);
	assert_int_equal(v.action, VERDICT_ACCEPT);
	assert_true(txn_has_symbol(t, "SPF_FAIL"));
	assert_true(txn_has_symbol(t, "IPREV_NONE"));
	assert_true(txn_has_symbol(t, "HELO_NOT_FQDN"));
	assert_true(t->score >= 7.5 - 1e-9);
	const struct txn_hdrop *fl = find_op(t, TXN_HDR_ADD, "X-Spam-Flag", 0);
	assert_non_null(fl);
	assert_string_equal(fl->value, "YES");
	const struct txn_hdrop *st = find_op(t, TXN_HDR_ADD, "X-Spam-Status", 0);
	assert_true(strncmp(st->value, "Yes, score=", 11) == 0);
	assert_non_null(strstr(st->value, "required=5.0"));
	eng_txn_free(t);
}

static void
test_internal_client_accepted(void **state)
{
	struct fixture *f = *state;
	struct txn *t = eng_txn_new(f->e);
	struct verdict v;

	txn_set_client(t, "10.1.2.3", 1234, NULL);
	assert_int_equal(eng_event(t, TXN_EV_CONNECT, &v), VERDICT_ACCEPT);
	assert_true(t->client_internal);
	/* Accepted: no further checks, every stage answers accept, and the
	 * end of the message still removes a forged Authentication-Results. */
	txn_set_helo(t, "bogus");
	assert_int_equal(eng_event(t, TXN_EV_HELO, &v), VERDICT_ACCEPT);
	txn_set_mail(t, "<a@nope.example>");
	assert_int_equal(eng_event(t, TXN_EV_MAIL, &v), VERDICT_ACCEPT);
	assert_false(txn_has_symbol(t, "SENDER_NXDOMAIN"));
	assert_false(txn_has_symbol(t, "HELO_NOT_FQDN"));
	txn_add_header(t, "Authentication-Results", " mx.test.example; spf=pass");
	assert_int_equal(eng_event(t, TXN_EV_HEADER, &v), VERDICT_ACCEPT);
	assert_int_equal(eng_event(t, TXN_EV_EOM, &v), VERDICT_ACCEPT);
	assert_string_equal(v.symbol, "INTERNAL_CLIENT");
	assert_false(txn_has_symbol(t, "DKIM_NONE"));
	assert_non_null(find_op(t, TXN_HDR_DELETE, "Authentication-Results", 0));
	/* The next message of the connection is accepted too. */
	eng_txn_reset(t);
	txn_set_mail(t, "<b@nope.example>");
	assert_int_equal(eng_event(t, TXN_EV_MAIL, &v), VERDICT_ACCEPT);
	eng_txn_free(t);
}

static void
test_reload_keeps_inflight_snapshot(void **state)
{
	struct fixture *f = *state;
	struct txn *old = eng_txn_new(f->e);
	char err[1024];
	int fd;
	char path[] = "/tmp/mxw-eng2-XXXXXX";
	const char *text = "threshold add_header 1\nscore SPF_FAIL 9\n";

	fd = mkstemp(path);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	char *over[] = { "hostname=mx.test.example", "local_rules_file=" };
	struct cfg *c = cfg_load(NULL, over, 2, err, sizeof(err));
	struct rules *r = rules_load(path, NULL, RULES_JIT, err, sizeof(err));
	unlink(path);
	assert_non_null(c);
	assert_non_null(r);
	eng_reload(f->e, c, r);
	struct txn *nw = eng_txn_new(f->e);
	assert_true(rules_score(eng_rules(old), "SPF_FAIL") == 3.0);
	assert_true(rules_score(eng_rules(nw), "SPF_FAIL") == 9.0);
	eng_txn_free(old);	/* the old snapshot is freed here */
	eng_txn_free(nw);
}

/* A message that started but got no decision (client gone, RSET) is
 * still logged once, with stage=abort; a decided one is not logged again. */
static void
test_abort_logged_once(void **state)
{
	struct fixture *f = *state;
	char path[] = "/tmp/mxw-eng-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	struct verdict v;
	char buf[8192];

	assert_true(fd >= 0 && saved >= 0);
	dup2(fd, 2);
	struct txn *t = eng_txn_new(f->e);
	assert_int_equal(start(t, "192.0.2.10", "mail.ok.example",
	    "<a@ok.example>", &v), VERDICT_CONTINUE);
	eng_txn_reset(t);		/* RSET: abort line */
	txn_set_mail(t, "<a@nope.example>");
	assert_int_equal(eng_event(t, TXN_EV_MAIL, &v), VERDICT_REJECT);
	eng_txn_free(t);		/* decided already: no second line */
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	buf[n] = '\0';
	int aborts = 0, lines = 0;
	for (char *p = buf; (p = strstr(p, "stage=")) != NULL; p++) {
		lines++;
		aborts += strncmp(p, "stage=abort", 11) == 0;
	}
	if (aborts != 1 || lines != 2)
		fail_msg("want 1 abort line of 2, got %d of %d:\n%s", aborts, lines,
		    buf);
	assert_non_null(strstr(buf, "stage=abort symbols=IPREV_PASS"));
	assert_non_null(strstr(buf, "action=none"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sender_nxdomain_rejected_at_mail,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_mx_and_temperror, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pass_with_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_score_marks_spam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_internal_client_accepted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reload_keeps_inflight_snapshot,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_logged_once, setup,
		    teardown),
	};
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
