/*
 * engine.c - the policy engine: runs each check at its SMTP stage,
 * applies the rule set's actions and thresholds, and decides.
 *
 * Called by the front ends (filter/milter.c, `mxwarden check`) through
 * engine.h only. It owns the process-wide resolver and the check
 * contexts (libspf2 server, libopendkim library, libopendmarc + public
 * suffix list), and the current config/rules snapshot.
 *
 * Decisions are taken at the earliest stage that has the information:
 * a symbol whose rule action is reject, tempfail or discard acts as soon
 * as it is added (connect, HELO, MAIL, RCPT or end of message); scores
 * are summed and compared with the thresholds at end of message.
 *
 * Thread safety: one txn per thread at a time; the snapshot pointer is
 * swapped under a mutex and reference-counted, so a reload never frees
 * a snapshot that a transaction in flight still reads.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "authres.h"
#include "buf.h"
#include "config.h"
#include "dkim.h"
#include "dmarc.h"
#include "dns.h"
#include "engine.h"
#include "helo.h"
#include "iprev.h"
#include "log.h"
#include "mime.h"
#include "rules.h"
#include "sender.h"
#include "spf.h"
#include "greylist.h"
#include "harvest.h"
#include "ratelimit.h"
#include "relay.h"
#include "store.h"
#include "util.h"

struct eng_snap {
	int		 refs;
	struct cfg	*cfg;
	struct rules	*rules;
};

struct eng {
	struct dns	*dns;
	struct chk_spf	*spf;
	struct chk_dkim	*dkim;
	struct chk_dmarc *dmarc;
	struct store	*store;		/* history; NULL when unavailable */
	pthread_mutex_t	 lock;		/* guards cur and refs */
	struct eng_snap	*cur;
	unsigned long	 next_id;
};

/* Symbols that on_dns_error turns into a tempfail when the rule set
 * gives them no action of their own: the checks that can reject. */
static const char *const eng_dns_error_syms[] = {
	"SENDER_TEMPERROR", "SPF_TEMPERROR", "DMARC_TEMPERROR",
};

static struct eng_snap *
eng_snap_new(struct cfg *cfg, struct rules *rules)
{
	struct eng_snap *s = xcalloc(1, sizeof(*s));

	s->refs = 1;
	s->cfg = cfg;
	s->rules = rules;
	return s;
}

/* eng_snap_release - drop one reference; caller holds e->lock. */
static void
eng_snap_release(struct eng_snap *s)
{
	if (s != NULL && --s->refs == 0) {
		cfg_free(s->cfg);
		rules_free(s->rules);
		free(s);
	}
}

struct eng *
eng_new(struct cfg *cfg, struct rules *rules, char *err, size_t errlen)
{
	struct dns_opts o = {
		.server = cfg->dns_server,
		.timeout_ms = cfg->dns_timeout_ms,
		.unbound_conf = cfg->dns_unbound_conf[0] ? cfg->dns_unbound_conf : NULL,
	};
	struct dns *d = dns_new(&o, err, errlen);

	if (d == NULL) {
		cfg_free(cfg);
		rules_free(rules);
		return NULL;
	}
	return eng_new_dns(cfg, rules, d, err, errlen);
}

struct eng *
eng_new_dns(struct cfg *cfg, struct rules *rules, struct dns *d, char *err,
    size_t errlen)
{
	struct eng *e = xcalloc(1, sizeof(*e));

	pthread_mutex_init(&e->lock, NULL);
	e->cur = eng_snap_new(cfg, rules);
	e->dns = d;
	if ((e->spf = chk_spf_new(e->dns, cfg->hostname, err, errlen)) == NULL ||
	    (e->dkim = chk_dkim_new(e->dns, err, errlen)) == NULL ||
	    (e->dmarc = chk_dmarc_new(e->dns, cfg->public_suffix_list, err,
	    errlen)) == NULL) {
		eng_free(e);
		return NULL;
	}
	return e;
}

void
eng_free(struct eng *e)
{
	if (e == NULL)
		return;
	chk_dmarc_free(e->dmarc);
	chk_dkim_free(e->dkim);
	chk_spf_free(e->spf);
	dns_free(e->dns);
	pthread_mutex_lock(&e->lock);
	eng_snap_release(e->cur);
	pthread_mutex_unlock(&e->lock);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void
eng_reload(struct eng *e, struct cfg *cfg, struct rules *rules)
{
	struct eng_snap *s = eng_snap_new(cfg, rules);

	pthread_mutex_lock(&e->lock);
	eng_snap_release(e->cur);
	e->cur = s;
	pthread_mutex_unlock(&e->lock);
}

void
eng_set_store(struct eng *e, struct store *s)
{
	e->store = s;
}

struct dns *
eng_dns(const struct eng *e)
{
	return e->dns;
}

const struct cfg *
eng_cfg(const struct txn *t)
{
	return t->snap->cfg;
}

const struct rules *
eng_rules(const struct txn *t)
{
	return t->snap->rules;
}

static long long
eng_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct txn *
eng_txn_new(struct eng *e)
{
	struct txn *t = xcalloc(1, sizeof(*t));

	t->eng = e;
	pthread_mutex_lock(&e->lock);
	t->snap = e->cur;
	t->snap->refs++;
	unsigned long id = ++e->next_id;
	pthread_mutex_unlock(&e->lock);
	str_fmt(t->id, sizeof(t->id), "%lx.%lu", (unsigned long)time(NULL) & 0xfffff,
	    id);
	t->our_hostname = xstrdup(t->snap->cfg->hostname);
	t->t_start_us = eng_now_us();
	return t;
}

static void eng_log(struct txn *t, const char *stage, const struct verdict *v);

/* eng_log_abort - a message that started (MAIL) but got no decision
 * (client gone, RSET, MTA abort) still gets its summary line. */
static void
eng_log_abort(struct txn *t)
{
	struct verdict v = { .action = VERDICT_CONTINUE };

	if (t->mail_from != NULL && !t->logged)
		eng_log(t, "abort", &v);
}

void
eng_txn_reset(struct txn *t)
{
	eng_log_abort(t);
	chk_dkim_txn_free(t);
	mime_free(t->mime);
	t->mime = NULL;
	txn_clear_message(t);
	t->t_start_us = eng_now_us();
}

void
eng_txn_free(struct txn *t)
{
	if (t == NULL)
		return;
	eng_log_abort(t);
	chk_dkim_txn_free(t);
	mime_free(t->mime);
	t->mime = NULL;
	txn_clear_all(t);
	pthread_mutex_lock(&t->eng->lock);
	eng_snap_release(t->snap);
	pthread_mutex_unlock(&t->eng->lock);
	free(t);
}

/* eng_set_reply - fill v from "550 5.7.1 text" (expanded), or from the
 * defaults when reply is NULL or unusable. */
static void
eng_set_reply(struct txn *t, struct verdict *v, const char *reply,
    const char *symbol)
{
	char expanded[512], rc[4], xc[16];
	const char *text;

	if (reply != NULL) {
		rules_expand(reply, t, symbol, expanded, sizeof(expanded));
		if (rules_parse_reply(expanded, rc, xc, &text) == 0) {
			str_copy(v->rcode, rc, sizeof(v->rcode));
			str_copy(v->xcode, xc, sizeof(v->xcode));
			str_copy(v->text, text, sizeof(v->text));
			return;
		}
	}
	if (v->action == VERDICT_TEMPFAIL) {
		str_copy(v->rcode, "451", sizeof(v->rcode));
		str_copy(v->xcode, "4.7.1", sizeof(v->xcode));
		str_fmt(v->text, sizeof(v->text), "Try again later (%s)", symbol);
	} else {
		str_copy(v->rcode, "550", sizeof(v->rcode));
		str_copy(v->xcode, "5.7.1", sizeof(v->xcode));
		str_fmt(v->text, sizeof(v->text), "Message rejected by policy (%s)",
		    symbol);
	}
}

static int
eng_is_dns_error_sym(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(eng_dns_error_syms); i++)
		if (strcmp(eng_dns_error_syms[i], name) == 0)
			return 1;
	return 0;
}

/*
 * eng_decide_symbols - the first symbol (in the order added) whose rule
 * action is immediate decides. Immediate: accept (a whitelist),
 * reject, tempfail, discard; quarantine and add_header wait for the end
 * of the message. Returns the action (CONTINUE if none).
 */
static enum verdict_action
eng_decide_symbols(struct txn *t, int eom, struct verdict *v)
{
	const struct rules *r = t->snap->rules;
	const struct cfg *c = t->snap->cfg;

	for (size_t i = 0; i < t->nsym; i++) {
		const char *name = t->sym[i].name;
		const struct rules_action *a = rules_action(r, name);
		enum verdict_action act;
		const char *reply = NULL;

		if (a != NULL) {
			act = a->action;
			reply = a->reply;
		} else if (eng_is_dns_error_sym(name) &&
		    c->on_dns_error == CFG_ONERR_TEMPFAIL) {
			act = VERDICT_TEMPFAIL;
			reply = "451 4.4.3 Temporary DNS failure (%{symbol}), try again later";
		} else {
			continue;
		}
		if (!eom && (act == VERDICT_QUARANTINE || act == VERDICT_ADD_HEADER))
			continue;
		if (act == VERDICT_ADD_HEADER)
			continue;	/* counted by eng_score() */
		memset(v, 0, sizeof(*v));
		v->action = act;
		str_copy(v->symbol, name, sizeof(v->symbol));
		if (act == VERDICT_REJECT || act == VERDICT_TEMPFAIL)
			eng_set_reply(t, v, reply, name);
		return act;
	}
	return VERDICT_CONTINUE;
}

/* eng_score - sum the scores; returns non-zero if a symbol's action
 * forces the spam headers (action add_header). */
static int
eng_score(struct txn *t)
{
	const struct rules *r = t->snap->rules;
	int forced = 0;

	t->score = 0;
	for (size_t i = 0; i < t->nsym; i++) {
		const struct rules_action *a = rules_action(r, t->sym[i].name);
		/* A symbol without a score line keeps the score its check
		 * gave it (DNSBL weights), else 0. */
		if (rules_has_score(r, t->sym[i].name))
			t->sym[i].score = rules_score(r, t->sym[i].name);
		t->score += t->sym[i].score;
		if (a != NULL && a->action == VERDICT_ADD_HEADER)
			forced = 1;
	}
	return forced;
}

/* eng_threshold - the strongest threshold the score reaches. */
static enum verdict_action
eng_threshold(struct txn *t, struct verdict *v, int *is_spam, double *required)
{
	const struct rules *r = t->snap->rules;
	static const struct {
		enum rules_threshold	 which;
		enum verdict_action	 act;
	} order[] = {
		{ RT_REJECT, VERDICT_REJECT }, { RT_TEMPFAIL, VERDICT_TEMPFAIL },
		{ RT_QUARANTINE, VERDICT_QUARANTINE },
		{ RT_ADD_HEADER, VERDICT_ADD_HEADER },
	};
	int set;
	const char *reply;
	double add = rules_threshold(r, RT_ADD_HEADER, &set, NULL);

	*required = set ? add : -1;
	*is_spam = 0;
	for (size_t i = 0; i < ARRAY_LEN(order); i++) {
		double th = rules_threshold(r, order[i].which, &set, &reply);
		if (!set || t->score < th)
			continue;
		*is_spam = 1;
		if (*required < 0)
			*required = th;
		memset(v, 0, sizeof(*v));
		v->action = order[i].act;
		if (v->action == VERDICT_REJECT || v->action == VERDICT_TEMPFAIL) {
			char sym[64];
			str_fmt(sym, sizeof(sym), "score %.1f", t->score);
			if (reply == NULL)
				reply = v->action == VERDICT_REJECT ?
				    "550 5.7.1 Message rejected as spam" :
				    "451 4.7.1 Message deferred, try again later";
			eng_set_reply(t, v, reply, sym);
		}
		return v->action;
	}
	return VERDICT_CONTINUE;
}

/* eng_headers - queue the header edits of a delivered message. */
static void
eng_headers(struct txn *t, int is_spam, double required)
{
	const char *id = t->snap->cfg->authserv_id;
	int ar_seen = 0;

	/* Remove Authentication-Results that claim to be ours (RFC 8601
	 * §5) and any incoming spam verdict: downstream filters trust
	 * them. Indices count occurrences of that header name, from 1. */
	for (size_t i = 0; i < t->nhdr; i++) {
		const char *n = t->hdr[i].name;
		if (strcasecmp(n, "Authentication-Results") == 0) {
			ar_seen++;
			if (authres_is_ours(t->hdr[i].value, id))
				txn_hdrop(t, TXN_HDR_DELETE, n, NULL, ar_seen);
		}
	}
	static const char *const spam_hdrs[] = { "X-Spam-Flag", "X-Spam-Status" };
	for (size_t k = 0; k < ARRAY_LEN(spam_hdrs); k++) {
		int seen = 0;
		for (size_t i = 0; i < t->nhdr; i++)
			if (strcasecmp(t->hdr[i].name, spam_hdrs[k]) == 0)
				txn_hdrop(t, TXN_HDR_DELETE, spam_hdrs[k], NULL, ++seen);
	}

	char *ar = authres_build(t, id);
	txn_hdrop(t, TXN_HDR_INSERT, "Authentication-Results", ar, 0);
	free(ar);
	if (is_spam)
		txn_hdrop(t, TXN_HDR_ADD, "X-Spam-Flag", "YES", 0);
	char *st = authres_spam_status(t, required, is_spam);
	txn_hdrop(t, TXN_HDR_ADD, "X-Spam-Status", st, 0);
	free(st);
}

/* eng_log - the one summary line per transaction. */
static void
eng_log(struct txn *t, const char *stage, const struct verdict *v)
{
	struct buf b;

	t->logged = 1;
	if (!log_enabled(LOG_LVL_INFO)) {
		if (t->eng->store != NULL)
			store_history_add(t->eng->store, t, verdict_name(v->action));
		return;
	}
	buf_init(&b, 4096);
	for (size_t i = 0; i < t->nsym; i++)
		buf_printf(&b, "%s%s(%.1f)", i ? "," : "", t->sym[i].name,
		    t->sym[i].score);
	char tls[300] = "";
	if (t->tls_version != NULL || t->tls_cipher != NULL)
		(void)str_fmt(tls, sizeof(tls), " tls=%s/%s",
		    t->tls_version ? t->tls_version : "unknown",
		    t->tls_cipher ? t->tls_cipher : "unknown");
	log_info("%s: [%s]:%d helo=<%s> from=<%s> rcpt=%zu%s%s%s stage=%s "
	    "symbols=%s score=%.1f action=%s%s%s%s%s time=%lldms",
	    t->id, t->client_ip ? t->client_ip : "?", t->client_port,
	    t->helo ? t->helo : "", t->mail_from ? t->mail_from : "",
	    t->nrcpt, t->queue_id ? " qid=" : "", t->queue_id ? t->queue_id : "",
	    tls, stage, b.data ? b.data : "", t->score,
	    v->action == VERDICT_CONTINUE ? "none" : verdict_name(v->action),
	    v->rcode[0] ? " reply=" : "", v->rcode, v->xcode[0] ? " " : "",
	    v->xcode, (eng_now_us() - t->t_start_us) / 1000);
	buf_free(&b);
	if (t->eng->store != NULL)
		store_history_add(t->eng->store, t, verdict_name(v->action));
}

static const char *
eng_stage_name(enum txn_event ev)
{
	static const char *const n[] = { "connect", "helo", "mail", "rcpt",
		"data", "header", "eoh", "body", "eom" };
	return (size_t)ev < ARRAY_LEN(n) ? n[ev] : "?";
}

/* eng_eom - the end-of-message decision. */
static enum verdict_action
eng_eom(struct txn *t, struct verdict *v)
{
	int is_spam = 0;
	double required = -1;
	enum verdict_action a;

	chk_dkim_eom(t->eng->dkim, t);
	/* Content rules and whitelist_from (needs DKIM) before DMARC, so a
	 * whitelist decides first; meta rules last, over every symbol. */
	if (t->mime != NULL)
		mime_finish(t->mime);
	rules_eval(t->snap->rules, t, RS_EOM, t->mime, t->eng->dns);
	chk_dmarc_run(t->eng->dmarc, t);
	chk_relay_eom(t);
	rules_eval_meta(t->snap->rules, t);
	int forced = eng_score(t);
	struct verdict by_rule = { 0 }, by_score = { 0 };
	a = eng_decide_symbols(t, 1, &by_rule);
	enum verdict_action th = eng_threshold(t, &by_score, &is_spam, &required);
	if (a != VERDICT_CONTINUE) {
		*v = by_rule;
	} else {
		*v = by_score;
		a = th;
	}
	if (forced)
		is_spam = 1;
	if (a == VERDICT_CONTINUE || a == VERDICT_ADD_HEADER) {
		memset(v, 0, sizeof(*v));
		v->action = a = VERDICT_ACCEPT;
	}
	if (a == VERDICT_ACCEPT || a == VERDICT_QUARANTINE)
		eng_headers(t, is_spam, required);
	return a;
}

/*
 * eng_state - the state checks of a stage (blocks, rate limits, relay,
 * harvesting, greylisting). A decision is logged and returned; at RCPT
 * it concerns the newest recipient only (dropped from the txn).
 */
static enum verdict_action
eng_state(struct txn *t, enum txn_event ev, struct verdict *v)
{
	struct store *s = t->eng->store;
	enum verdict_action a;

	switch (ev) {
	case TXN_EV_CONNECT:
	case TXN_EV_MAIL:
		if ((a = chk_harvest_blocked(t, s, ev, v)) == VERDICT_CONTINUE)
			a = chk_ratelimit_run(t, s, ev, v);
		break;
	case TXN_EV_RCPT:
		if ((a = chk_harvest_blocked(t, s, ev, v)) == VERDICT_CONTINUE &&
		    (a = chk_relay_rcpt(t, v)) == VERDICT_CONTINUE &&
		    (a = chk_harvest_rcpt(t, s, v)) == VERDICT_CONTINUE &&
		    (a = chk_ratelimit_run(t, s, ev, v)) == VERDICT_CONTINUE)
			a = chk_greylist_rcpt(t, s, v);
		break;
	default:
		return VERDICT_CONTINUE;
	}
	if (a != VERDICT_CONTINUE) {
		eng_score(t);
		t->verdict = *v;
		eng_log(t, eng_stage_name(ev), v);
	}
	return a;
}

enum verdict_action
eng_bad_rcpt(struct txn *t, const char *rcpt, struct verdict *v)
{
	enum verdict_action a = chk_harvest_bad_rcpt(t, t->eng->store, rcpt, v);

	if (a != VERDICT_CONTINUE) {
		eng_score(t);
		t->verdict = *v;
		eng_log(t, "rcpt", v);
	}
	return a;
}

/* eng_accept - accept without further checks, for this message (1) or
 * the whole connection (2); fills v. */
static void
eng_accept(struct txn *t, struct verdict *v, const char *by, int scope)
{
	char sym[64];

	str_copy(sym, by, sizeof(sym));
	memset(v, 0, sizeof(*v));
	v->action = VERDICT_ACCEPT;
	str_copy(v->symbol, sym, sizeof(v->symbol));
	t->accepted = scope;
	str_copy(t->accepted_by, sym, sizeof(t->accepted_by));
}

/*
 * eng_event_accepted - every stage of an accepted transaction answers
 * accept at once (whitelists short-circuit); the end of the message
 * removes forged headers, adds ours from what was checked, and logs.
 */
static enum verdict_action
eng_event_accepted(struct txn *t, enum txn_event ev, struct verdict *v)
{
	int set;
	double add = rules_threshold(t->snap->rules, RT_ADD_HEADER, &set, NULL);

	v->action = VERDICT_ACCEPT;
	str_copy(v->symbol, t->accepted_by, sizeof(v->symbol));
	if (ev != TXN_EV_EOM)
		return VERDICT_ACCEPT;
	eng_score(t);
	eng_headers(t, 0, set ? add : -1);
	t->verdict = *v;
	eng_log(t, "eom", v);
	return VERDICT_ACCEPT;
}

enum verdict_action
eng_event(struct txn *t, enum txn_event ev, struct verdict *v)
{
	struct eng *e = t->eng;
	const struct cfg *c = t->snap->cfg;
	enum verdict_action a = VERDICT_CONTINUE;

	memset(v, 0, sizeof(*v));
	if (t->accepted)
		return eng_event_accepted(t, ev, v);
	switch (ev) {
	case TXN_EV_CONNECT:
		t->client_internal = rules_list_has_ip(t->snap->rules,
		    "internal_networks", t->client_ip);
		if ((a = eng_state(t, ev, v)) != VERDICT_CONTINUE)
			return a;
		if (t->client_internal) {
			/* Trust comes from internal_networks only. */
			eng_accept(t, v, "INTERNAL_CLIENT", 2);
			log_info("%s: [%s]:%d internal client: not checked", t->id,
			    t->client_ip, t->client_port);
			return VERDICT_ACCEPT;
		}
		chk_iprev_run(t, e->dns);
		rules_eval(t->snap->rules, t, RS_CONNECT, NULL, e->dns);
		break;
	case TXN_EV_HELO:
		chk_helo_run(t, e->dns, c->hostname);
		chk_spf_helo(e->spf, t);
		rules_eval(t->snap->rules, t, RS_HELO, NULL, e->dns);
		break;
	case TXN_EV_MAIL:
		if ((a = eng_state(t, ev, v)) != VERDICT_CONTINUE)
			return a;
		if (t->auth_user != NULL) {
			eng_accept(t, v, "AUTHENTICATED", 1);
			log_info("%s: [%s]:%d authenticated as %s: not checked",
			    t->id, t->client_ip, t->client_port, t->auth_user);
			return VERDICT_ACCEPT;
		}
		chk_sender_run(t, e->dns);
		chk_spf_mailfrom(e->spf, t);
		rules_eval(t->snap->rules, t, RS_MAIL, NULL, e->dns);
		break;
	case TXN_EV_RCPT:
		if ((a = eng_state(t, ev, v)) != VERDICT_CONTINUE)
			return a;
		rules_eval(t->snap->rules, t, RS_RCPT, NULL, e->dns);
		break;
	case TXN_EV_DATA:
		break;
	case TXN_EV_HEADER:
		if (t->nhdr > 0)
			chk_dkim_header(e->dkim, t, t->hdr[t->nhdr - 1].name,
			    t->hdr[t->nhdr - 1].value);
		return VERDICT_CONTINUE;
	case TXN_EV_EOH:
		chk_dkim_eoh(e->dkim, t);
		mime_free(t->mime);
		t->mime = rules_mime_new(t, (size_t)c->max_body_bytes);
		return VERDICT_CONTINUE;
	case TXN_EV_BODY:
		return VERDICT_CONTINUE;	/* see eng_body() */
	case TXN_EV_EOM:
		a = eng_eom(t, v);
		t->verdict = *v;
		eng_log(t, "eom", v);
		return a;
	}
	a = eng_decide_symbols(t, 0, v);
	if (a == VERDICT_ACCEPT) {
		/* A whitelist: no further checks; the end of the message
		 * still gets its headers and its log line. */
		eng_accept(t, v, v->symbol, ev == TXN_EV_CONNECT ||
		    ev == TXN_EV_HELO ? 2 : 1);
	} else if (a != VERDICT_CONTINUE) {
		eng_score(t);
		t->verdict = *v;
		eng_log(t, eng_stage_name(ev), v);
	}
	return a;
}

enum verdict_action
eng_body(struct txn *t, const unsigned char *data, size_t len,
    struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (t->accepted) {
		v->action = VERDICT_ACCEPT;
		str_copy(v->symbol, t->accepted_by, sizeof(v->symbol));
		return VERDICT_ACCEPT;
	}
	t->body_bytes += len;
	chk_dkim_body(t->eng->dkim, t, data, len);
	if (t->mime != NULL)
		mime_feed(t->mime, data, len);
	return VERDICT_CONTINUE;
}
