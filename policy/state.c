/*
 * state.c - helpers shared by the state checks (see state.h): network
 * keys, block and whitelist lookups in the store, the verdict of a state
 * symbol and the on_db_error outcome.
 *
 * Called by relay.c, harvest.c, ratelimit.c and greylist.c from the
 * engine's threads. Owns nothing but the test clock skew (one atomic
 * long, 0 outside unit tests); thread-safe.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "engine.h"
#include "log.h"
#include "rules.h"
#include "state.h"
#include "store.h"
#include "util.h"

static long state_skew;

time_t
state_now(void)
{
	return time(NULL) + __atomic_load_n(&state_skew, __ATOMIC_RELAXED);
}

static unsigned state_blocks_written;

unsigned
state_block_gen(void)
{
	return __atomic_load_n(&state_blocks_written, __ATOMIC_ACQUIRE);
}

void
state_block_written(void)
{
	__atomic_add_fetch(&state_blocks_written, 1, __ATOMIC_RELEASE);
}

void
state_clock_skew(long secs)
{
	__atomic_add_fetch(&state_skew, secs, __ATOMIC_RELAXED);
}

void
state_net_key(const char *ip, char *out, size_t outlen)
{
	unsigned char b[16];
	char txt[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, ip, b) == 1) {
		b[3] = 0;
		inet_ntop(AF_INET, b, txt, sizeof(txt));
		str_fmt(out, outlen, "%s/24", txt);
	} else if (inet_pton(AF_INET6, ip, b) == 1) {
		memset(b + 8, 0, 8);
		inet_ntop(AF_INET6, b, txt, sizeof(txt));
		str_fmt(out, outlen, "%s/64", txt);
	} else {
		str_copy(out, ip, outlen);
	}
}

int
state_ip_in(const char *ip, const char *entry)
{
	if (strchr(entry, '/') != NULL)
		return rules_ip_in_cidr(ip, entry) == 1;
	return strcasecmp(ip, entry) == 0;
}

struct state_scan {
	const char	*ip;
	const struct txn *t;
	char		*reason;
	size_t		 rlen;
	int		 hit;
};

/* state_block_row - an entry equal to the IP (as stored) decides at
 * once; else the first entry containing it (a CIDR, in key order). */
static int
state_block_row(const struct store_row *r, void *arg)
{
	struct state_scan *sc = arg;
	int exact = strcmp(sc->ip, r->key) == 0;

	if (!exact && (sc->hit || !state_ip_in(sc->ip, r->key)))
		return 0;
	sc->hit = 1;
	if (sc->reason != NULL)
		str_copy(sc->reason, r->value ? r->value : "", sc->rlen);
	return exact;
}

int
state_blocked(struct store *s, const char *ip, time_t now, char *reason,
    size_t rlen)
{
	struct state_scan sc = { .ip = ip, .reason = reason, .rlen = rlen };

	const char *keys[3] = { ip, NULL, NULL };

	/* One read: the IP's own block and the networks, not the other
	 * IPs' blocks (harvest control makes thousands of those). */
	if (store_list_keys(s, "block", keys, now, state_block_row, &sc) != 0)
		return -1;
	return sc.hit;
}

static int
state_white_row(const struct store_row *r, void *arg)
{
	struct state_scan *sc = arg;
	const struct txn *t = sc->t;
	const char *k = r->key;

	if (k[0] == '@')
		sc->hit = t->mail_domain != NULL && strcasecmp(k + 1,
		    t->mail_domain) == 0;
	else if (strchr(k, '@') != NULL)
		sc->hit = t->mail_from != NULL && strcasecmp(k, t->mail_from) == 0;
	else
		sc->hit = t->client_ip != NULL && state_ip_in(t->client_ip, k);
	return sc->hit;
}

int
state_whitelisted(struct store *s, const struct txn *t, time_t now)
{
	struct state_scan sc = { .t = t };
	char from[320], dom[320];	/* SMTP paths are at most 256 */
	const char *keys[3] = { t->client_ip, NULL, NULL };

	/* Addresses and domains are stored in lower case (db whitelist);
	 * the lookup reads the entries of this client, sender and domain
	 * and the networks, not the whole list. */
	if (t->mail_from != NULL && t->mail_from[0] != '\0' &&
	    strlen(t->mail_from) < sizeof(from)) {
		str_copy(from, t->mail_from, sizeof(from));
		str_lower(from);
		keys[1] = from;
	}
	if (t->mail_domain != NULL && strlen(t->mail_domain) + 1 < sizeof(dom)) {
		str_fmt(dom, sizeof(dom), "@%s", t->mail_domain);
		keys[2] = dom;
	}
	if (store_list_keys(s, "whitelist", keys, now, state_white_row, &sc) != 0)
		return -1;
	return sc.hit;
}

enum verdict_action
state_verdict(struct txn *t, struct verdict *v, const char *symbol,
    const char *detail, enum verdict_action def_action, const char *def_reply,
    int add_symbol)
{
	const struct rules_action *a = rules_action(eng_rules(t), symbol);
	const char *reply = def_reply, *text;
	char expanded[512], rc[4], xc[16];

	if (add_symbol)
		txn_symbol(t, symbol, detail);
	memset(v, 0, sizeof(*v));
	v->action = def_action;
	if (a != NULL && a->action != VERDICT_CONTINUE) {
		v->action = a->action;
		if (a->reply != NULL)
			reply = a->reply;
	}
	str_copy(v->symbol, symbol, sizeof(v->symbol));
	if (v->action != VERDICT_REJECT && v->action != VERDICT_TEMPFAIL)
		return v->action;
	rules_expand(reply, t, symbol, expanded, sizeof(expanded));
	if (rules_parse_reply(expanded, rc, xc, &text) == 0) {
		str_copy(v->rcode, rc, sizeof(v->rcode));
		str_copy(v->xcode, xc, sizeof(v->xcode));
		str_copy(v->text, text, sizeof(v->text));
	}
	return v->action;
}

enum verdict_action
state_db_error(struct txn *t, struct verdict *v)
{
	if (eng_cfg(t)->on_db_error == CFG_ONERR_TEMPFAIL)
		return state_verdict(t, v, "STATE_DB_ERROR", "database unavailable",
		    VERDICT_TEMPFAIL, "451 4.3.0 Temporary local problem, "
		    "try again later", 0);
	if (!txn_has_symbol(t, "STATE_DB_ERROR")) {
		txn_symbol(t, "STATE_DB_ERROR", "database unavailable");
		txn_hdrop(t, TXN_HDR_ADD, "X-Mxwarden-Note",
		    "state database unavailable: rate, harvest and greylist "
		    "checks skipped", 0);
	}
	memset(v, 0, sizeof(*v));
	return VERDICT_CONTINUE;
}

void
state_drop_last_rcpt(struct txn *t)
{
	if (t->nrcpt == 0)
		return;
	free(t->rcpt[--t->nrcpt]);
	t->rcpt[t->nrcpt] = NULL;
}
