/*
 * harvest.c - directory-harvest control (see harvest.h).
 *
 * Called by the engine at connect, MAIL and RCPT, and through
 * eng_bad_rcpt() by the front ends. Owns nothing; counters and blocks
 * live in the store, so every mxwarden process sharing the database
 * sees them and `mxwarden db unblock` takes effect at once.
 * Thread-safe.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "engine.h"
#include "harvest.h"
#include "log.h"
#include "relay.h"
#include "rules.h"
#include "state.h"
#include "store.h"
#include "util.h"

static int
harvest_exempt(struct txn *t, struct store *s, time_t now, int *err)
{
	*err = 0;
	if (t->client_internal || t->auth_user != NULL || t->client_ip == NULL)
		return 1;
	int w = state_whitelisted(s, t, now);
	if (w < 0)
		*err = 1;
	return w > 0;
}

enum verdict_action
chk_harvest_blocked(struct txn *t, struct store *s, enum txn_event ev,
    struct verdict *v)
{
	time_t now = state_now();
	unsigned gen = state_block_gen();
	char why[64];
	int err, b;

	memset(v, 0, sizeof(*v));
	if (s == NULL || t->client_internal || t->client_ip == NULL)
		return VERDICT_CONTINUE;
	/* Asked at connect, MAIL and each RCPT: within a second, and with
	 * no block written here since, the answer "not blocked" stands. */
	if (t->unblocked.at == now && t->unblocked.gen == gen &&
	    strcmp(t->unblocked.ip, t->client_ip) == 0)
		return VERDICT_CONTINUE;
	if ((b = state_blocked(s, t->client_ip, now, why, sizeof(why))) < 0)
		return state_db_error(t, v);
	if (b == 0) {
		t->unblocked.at = now;
		t->unblocked.gen = gen;
		str_copy(t->unblocked.ip, t->client_ip, sizeof(t->unblocked.ip));
		return VERDICT_CONTINUE;
	}
	if (harvest_exempt(t, s, now, &err))
		return VERDICT_CONTINUE;
	if (err)
		return state_db_error(t, v);
	return state_verdict(t, v, "HARVEST_BLOCKED", why, VERDICT_TEMPFAIL,
	    ev == TXN_EV_CONNECT ? "421 4.7.0 Too many invalid recipients, "
	    "try again later" : "450 4.7.1 Too many invalid recipients, "
	    "try again later", 1);
}

static long
harvest_param(const struct txn *t, const char *name, long dflt)
{
	return rules_param(eng_rules(t), "harvest", name, dflt);
}

enum verdict_action
chk_harvest_bad_rcpt(struct txn *t, struct store *s, const char *rcpt,
    struct verdict *v)
{
	time_t now = state_now();
	long threshold = harvest_param(t, "threshold", HARVEST_THRESHOLD);
	long n;
	int err;

	memset(v, 0, sizeof(*v));
	t->bad_rcpt++;
	if (s == NULL || threshold <= 0 || harvest_exempt(t, s, now, &err))
		return VERDICT_CONTINUE;
	if (err || store_count(s, "harvest", t->client_ip, harvest_param(t,
	    "window", HARVEST_WINDOW), 1, now, &n) != 0)
		return state_db_error(t, v);
	log_info("%s: [%s] invalid recipient <%s>: %ld in the window", t->id,
	    t->client_ip, rcpt ? rcpt : "", n);
	if (n >= threshold) {
		long block = harvest_param(t, "block", HARVEST_BLOCK);
		char detail[64];
		if (store_set(s, "block", t->client_ip, "harvest", now,
		    now + block) != 0)
			return state_db_error(t, v);
		state_block_written();
		log_warn("%s: [%s] blocked for %lds: %ld invalid recipients",
		    t->id, t->client_ip, block, n);
		str_fmt(detail, sizeof(detail), "%ld invalid recipients", n);
		return state_verdict(t, v, "HARVEST_BLOCKED", detail,
		    VERDICT_TEMPFAIL, "421 4.7.0 Too many invalid recipients, "
		    "try again later", 1);
	}
	long ms = n * harvest_param(t, "tarpit_ms", HARVEST_TARPIT_MS);
	long max = harvest_param(t, "tarpit_max_ms", HARVEST_TARPIT_MAX_MS);
	if (ms > max)
		ms = max;
	if (ms > 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	return VERDICT_CONTINUE;
}

enum verdict_action
chk_harvest_rcpt(struct txn *t, struct store *s, struct verdict *v)
{
	const struct rules *r = eng_rules(t);
	const char *rcpt;
	struct addr a;
	char full[400];

	memset(v, 0, sizeof(*v));
	if (t->nrcpt == 0 || t->client_internal || t->auth_user != NULL ||
	    !rules_list_exists(r, "valid_recipients"))
		return VERDICT_CONTINUE;
	rcpt = t->rcpt[t->nrcpt - 1];
	if (addr_parse(rcpt, &a) != ADDR_OK ||
	    !rules_list_has_domain(r, "local_domains", a.domain))
		return VERDICT_CONTINUE;	/* relay control decides */
	/* A quoted local part is compared without its quotes. */
	size_t ll = strlen(a.local);
	if (ll >= 2 && a.local[0] == '"' && strchr(a.local + 1, '\\') == NULL)
		str_fmt(full, sizeof(full), "%.*s@%s", (int)ll - 2, a.local + 1,
		    a.domain);
	else
		str_fmt(full, sizeof(full), "%s@%s", a.local, a.domain);
	/* Exact addresses (case-insensitive); "@domain" accepts every
	 * recipient of a domain. */
	if (rules_list_has_domain(r, "valid_recipients", full) ||
	    rules_list_has_domain(r, "valid_recipients", strchr(full, '@')))
		return VERDICT_CONTINUE;
	if (chk_harvest_bad_rcpt(t, s, full, v) != VERDICT_CONTINUE) {
		state_drop_last_rcpt(t);
		return v->action;
	}
	state_verdict(t, v, "RCPT_UNKNOWN", full, VERDICT_REJECT,
	    "550 5.1.1 Recipient address rejected: User unknown", 0);
	state_drop_last_rcpt(t);
	return v->action;
}
