/*
 * greylist.c - greylisting (see greylist.h).
 *
 * Called by the engine at RCPT. Owns nothing; the triplets and the
 * auto-whitelist live in the store (shared by every process on the
 * database). Thread-safe. Two retries racing may both pass: harmless.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine.h"
#include "greylist.h"
#include "log.h"
#include "rules.h"
#include "state.h"
#include "store.h"
#include "util.h"

static long
grey_param(const struct txn *t, const char *name, long dflt)
{
	return rules_param(eng_rules(t), "greylist", name, dflt);
}

/* greylist_skip - 1 when the client is not greylisted, -1 on error. */
static int
greylist_skip(struct txn *t, struct store *s, const char *net, time_t now)
{
	if (t->client_internal || t->auth_user != NULL)
		return 1;
	if (grey_param(t, "skip_spf_pass", 0) && t->spf.res == CHK_PASS &&
	    t->spf.domain != NULL && t->mail_domain != NULL &&
	    strcasecmp(t->spf.domain, t->mail_domain) == 0)
		return 1;
	int w = state_whitelisted(s, t, now);
	if (w != 0)
		return w;
	return store_get(s, "awl", net, now, NULL, 0, NULL, NULL);
}

/* greylist_passed - the triplet passes: remember it, count the pass
 * towards the client's auto-whitelist. 0 or -1. */
static int
greylist_passed(struct txn *t, struct store *s, const char *key,
    const char *net, time_t now)
{
	long passes, awl_exp = grey_param(t, "awl_expiry", GREYLIST_AWL_EXPIRY);
	long need = grey_param(t, "awl_passes", GREYLIST_AWL_PASSES);

	if (store_set(s, "grey", key, "pass", now, now + grey_param(t, "expiry",
	    GREYLIST_EXPIRY)) != 0)
		return -1;
	if (need <= 0)
		return 0;
	if (store_count(s, "awl", net, awl_exp, 1, now, &passes) != 0)
		return -1;
	if (passes >= need) {
		log_info("%s: [%s] %s auto-whitelisted after %ld passes", t->id,
		    t->client_ip, net, passes);
		return store_set(s, "awl", net, "auto", now, now + awl_exp);
	}
	return 0;
}

enum verdict_action
chk_greylist_rcpt(struct txn *t, struct store *s, struct verdict *v)
{
	time_t now = state_now(), created, expires;
	char net[80], key[1200], val[16], reply[160];
	long delay = grey_param(t, "delay", GREYLIST_DELAY);
	int rc;

	memset(v, 0, sizeof(*v));
	if (!grey_param(t, "enable", 0) || s == NULL || t->nrcpt == 0 ||
	    t->client_ip == NULL)
		return VERDICT_CONTINUE;
	state_net_key(t->client_ip, net, sizeof(net));
	if ((rc = greylist_skip(t, s, net, now)) < 0)
		return state_db_error(t, v);
	if (rc > 0)
		return VERDICT_CONTINUE;
	str_fmt(key, sizeof(key), "%s|%s|%s", net, t->mail_from ? t->mail_from :
	    "", t->rcpt[t->nrcpt - 1]);
	str_lower(key);
	rc = store_get(s, "grey", key, now, val, sizeof(val), &created, &expires);
	if (rc < 0)
		return state_db_error(t, v);
	if (rc == 1 && (strcmp(val, "pass") == 0 || now - created >= delay)) {
		if (greylist_passed(t, s, key, net, now) != 0)
			return state_db_error(t, v);
		return VERDICT_CONTINUE;
	}
	if (rc == 0) {
		created = now;
		if (store_set(s, "grey", key, "wait", now, now + delay +
		    grey_param(t, "retry_window", GREYLIST_RETRY_WINDOW)) != 0)
			return state_db_error(t, v);
	}
	str_fmt(reply, sizeof(reply), "451 4.7.1 Greylisted, try again in %ld "
	    "seconds", (long)(created + delay - now));
	state_verdict(t, v, "GREYLISTED", key, VERDICT_TEMPFAIL, reply, 0);
	state_drop_last_rcpt(t);
	return v->action;
}
