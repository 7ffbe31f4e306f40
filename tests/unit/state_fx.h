/*
 * state_fx.h - a fixture shared by the state checks' unit tests
 * (relay_test.c, harvest_test.c, ratelimit_test.c, greylist_test.c):
 * an engine over a static resolver with a rule text, and a state
 * database in a temporary directory; helpers that play one SMTP
 * connection through eng_event(). Static functions only: each test
 * file includes it once.
 */
#ifndef MXW_STATE_FX_H
#define MXW_STATE_FX_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "engine.h"
#include "log.h"
#include "rules.h"
#include "state.h"
#include "store.h"
#include "txn.h"
#include "util.h"

struct sfx {
	char		 dir[64];
	char		 db[128];
	char		 rules[128];
	struct eng	*e;
	struct store	*s;
};

/* Sender domains the MAIL stage looks up: they exist, so no sender
 * symbol gets in the way. */
static const struct dns_static_rr sfx_zone[] = {
	{ "sender.test", DNS_T_MX, "10 mx.sender.test", DNS_OK },
	{ "mx.sender.test", DNS_T_A, "192.0.2.25", DNS_OK },
	{ "local.test", DNS_T_MX, "10 mx.local.test", DNS_OK },
	{ "mx.local.test", DNS_T_A, "192.0.2.26", DNS_OK },
	{ "other.test", DNS_T_MX, "10 mx.other.test", DNS_OK },
	{ "mx.other.test", DNS_T_A, "192.0.2.27", DNS_OK },
};

/* sfx_new - engine with rules_text (plus cfg overrides), and a fresh
 * database set as its store. Fails the test on error. */
static struct sfx *
sfx_new(const char *rules_text, const char *on_db_error)
{
	struct sfx *f = calloc(1, sizeof(*f));
	char err[4096], ode[64];
	FILE *fp;

	assert_non_null(f);
	log_init("state_test", 1, LOG_LVL_ERR);
	str_copy(f->dir, "/tmp/mxw-state-XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	str_fmt(f->db, sizeof(f->db), "%s/state.db", f->dir);
	str_fmt(f->rules, sizeof(f->rules), "%s/t.rules", f->dir);
	assert_non_null(fp = fopen(f->rules, "w"));
	fputs(rules_text, fp);
	fclose(fp);
	str_fmt(ode, sizeof(ode), "on_db_error=%s",
	    on_db_error ? on_db_error : "tempfail");
	char *over[] = { "hostname=mx.test.example",
		"authserv_id=mx.test.example", "local_rules_file=", ode };
	struct cfg *c = cfg_load(NULL, over, 4, err, sizeof(err));
	if (c == NULL)
		fail_msg("cfg: %s", err);
	struct rules *r = rules_load(f->rules, NULL, RULES_JIT, err, sizeof(err));
	if (r == NULL)
		fail_msg("rules: %s", err);
	struct dns *d = dns_new_static(sfx_zone, ARRAY_LEN(sfx_zone));
	assert_non_null(d);
	if ((f->e = eng_new_dns(c, r, d, err, sizeof(err))) == NULL)
		fail_msg("engine: %s", err);
	if ((f->s = store_open(f->db, err, sizeof(err))) == NULL)
		fail_msg("store: %s", err);
	store_set_busy_ms(f->s, 200);
	eng_set_store(f->e, f->s);
	return f;
}

static void
sfx_free(struct sfx *f)
{
	static const char *const sfx_suffix[] = { "", "-wal", "-shm" };
	char p[160];

	eng_free(f->e);
	store_close(f->s);
	for (size_t i = 0; i < ARRAY_LEN(sfx_suffix); i++) {
		str_fmt(p, sizeof(p), "%s%s", f->db, sfx_suffix[i]);
		unlink(p);
	}
	unlink(f->rules);
	rmdir(f->dir);
	free(f);
}

/* sfx_conn - a connection from ip (authenticated as auth when not
 * NULL); *a gets the CONNECT verdict. */
static struct txn *
sfx_conn(struct sfx *f, const char *ip, const char *auth,
    enum verdict_action *a, struct verdict *v)
{
	struct txn *t = eng_txn_new(f->e);

	txn_set_client(t, ip, 40000, NULL);
	txn_set_auth(t, auth);
	*a = eng_event(t, TXN_EV_CONNECT, v);
	txn_set_helo(t, "client.sender.test");
	return t;
}

/* sfx_mail - a new message in t (after RSET) from from. */
static enum verdict_action
sfx_mail(struct txn *t, const char *from, struct verdict *v)
{
	eng_txn_reset(t);
	txn_set_mail(t, from);
	return eng_event(t, TXN_EV_MAIL, v);
}

static enum verdict_action
sfx_rcpt(struct txn *t, const char *rcpt, struct verdict *v)
{
	txn_add_rcpt(t, rcpt);
	return eng_event(t, TXN_EV_RCPT, v);
}

/* sfx_one - a whole envelope on a new connection: the first decision
 * (connect, MAIL or RCPT) that is not CONTINUE, with its verdict. */
static enum verdict_action
sfx_one(struct sfx *f, const char *ip, const char *auth, const char *from,
    const char *rcpt, struct verdict *v)
{
	enum verdict_action a;
	struct txn *t = sfx_conn(f, ip, auth, &a, v);

	if (a == VERDICT_CONTINUE)
		a = sfx_mail(t, from, v);
	if (a == VERDICT_CONTINUE)
		a = sfx_rcpt(t, rcpt, v);
	eng_txn_free(t);
	return a;
}

#endif
