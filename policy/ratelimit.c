/*
 * ratelimit.c - rate limits (see ratelimit.h).
 *
 * Called by the engine at connect, MAIL and RCPT. Owns nothing: the
 * rules come from the txn's snapshot, windowed counts from the store
 * (one atomic increment-and-read per limit), per-connection and
 * per-message counts from the txn. Thread-safe.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "ratelimit.h"
#include "rules.h"
#include "state.h"
#include "store.h"
#include "util.h"

/* ratelimit_stage - the stage at which a key's event happens. */
static enum txn_event
ratelimit_stage(enum rules_rl_key k)
{
	switch (k) {
	case RL_CONN_PER_IP:	return TXN_EV_CONNECT;
	case RL_RCPT_PER_MSG:	return TXN_EV_RCPT;
	default:		return TXN_EV_MAIL;
	}
}

/* ratelimit_key - the counter key for t, or 0 when the limit does not
 * apply (no sender, not authenticated, ...). */
static int
ratelimit_key(const struct txn *t, enum rules_rl_key k, char *out, size_t len)
{
	switch (k) {
	case RL_IP:
	case RL_CONN_PER_IP:
		str_copy(out, t->client_ip, len);
		return 1;
	case RL_NET:
		state_net_key(t->client_ip, out, len);
		return 1;
	case RL_SENDER:
		if (t->mail_from == NULL || t->mail_from[0] == '\0')
			return 0;
		str_copy(out, t->mail_from, len);
		str_lower(out);
		return 1;
	case RL_SENDER_DOMAIN:
		if (t->mail_domain == NULL)
			return 0;
		str_copy(out, t->mail_domain, len);
		return 1;
	case RL_AUTH_USER:
		if (t->auth_user == NULL)
			return 0;
		str_copy(out, t->auth_user, len);
		return 1;
	default:
		return 0;
	}
}

static enum verdict_action
ratelimit_hit(struct txn *t, const struct rules_ratelimit *rl, long n,
    struct verdict *v)
{
	char detail[160];

	str_fmt(detail, sizeof(detail), "%s: %s %ld > %ld", rl->name,
	    rules_rl_key_name(rl->key), n, rl->limit);
	/* A recipient over the limit is refused alone; the message stands. */
	int per_rcpt = rl->key == RL_RCPT_PER_MSG;
	state_verdict(t, v, "RATE_LIMITED", detail, VERDICT_TEMPFAIL,
	    rl->reply ? rl->reply : "451 4.7.1 Rate limit exceeded, try again "
	    "later", !per_rcpt);
	if (per_rcpt)
		state_drop_last_rcpt(t);
	return v->action;
}

static enum verdict_action ratelimit_run(struct txn *t, struct store *s,
    enum txn_event ev, struct verdict *v);

/* ratelimit_counts - does a limit of stage ev keep a counter in the
 * store? (rcpt_per_msg and msg_per_conn are counted in the txn.) */
static int
ratelimit_counts(const struct rules *r, enum txn_event ev)
{
	size_t n = rules_ratelimit_count(r);

	for (size_t i = 0; i < n; i++) {
		const struct rules_ratelimit *rl = rules_ratelimit_get(r, i);

		if (ratelimit_stage(rl->key) == ev &&
		    rl->key != RL_RCPT_PER_MSG && rl->key != RL_MSG_PER_CONN)
			return 1;
	}
	return 0;
}

/* chk_ratelimit_run - every limit of this stage, counted in one
 * database transaction (none when no limit of the stage counts in the
 * store: most stages of most configurations). */
enum verdict_action
chk_ratelimit_run(struct txn *t, struct store *s, enum txn_event ev,
    struct verdict *v)
{
	enum verdict_action a;

	if (s == NULL || !ratelimit_counts(eng_rules(t), ev))
		return ratelimit_run(t, s, ev, v);
	store_batch_begin(s);
	a = ratelimit_run(t, s, ev, v);
	store_batch_end(s);
	return a;
}

static enum verdict_action
ratelimit_run(struct txn *t, struct store *s, enum txn_event ev,
    struct verdict *v)
{
	const struct rules *r = eng_rules(t);
	size_t n = rules_ratelimit_count(r);
	time_t now = state_now();
	int exempt = -1;

	memset(v, 0, sizeof(*v));
	if (ev == TXN_EV_MAIL)
		t->nmsg++;
	for (size_t i = 0; i < n; i++) {
		const struct rules_ratelimit *rl = rules_ratelimit_get(r, i);
		char key[512], kind[160];
		long count;

		long inmem = -1;	/* the count of a limit kept in memory */

		if (ratelimit_stage(rl->key) != ev || t->client_ip == NULL)
			continue;
		if (rl->key == RL_RCPT_PER_MSG || rl->key == RL_MSG_PER_CONN) {
			inmem = rl->key == RL_RCPT_PER_MSG ? (long)t->nrcpt :
			    (long)t->nmsg;
			/* Under the limit: whether the client is exempt does
			 * not matter, and the database is not read. */
			if (inmem <= rl->limit)
				continue;
		}
		if (rl->key != RL_AUTH_USER) {
			if (exempt < 0)
				exempt = t->client_internal ? 1 : s == NULL ? 0 :
				    state_whitelisted(s, t, now);
			if (exempt < 0)
				return state_db_error(t, v);
			if (exempt)
				continue;
		}
		if (inmem >= 0)
			return ratelimit_hit(t, rl, inmem, v);
		if (s == NULL || !ratelimit_key(t, rl->key, key, sizeof(key)))
			continue;
		str_fmt(kind, sizeof(kind), "rate:%s", rl->name);
		if (store_count(s, kind, key, rl->window, 1, now, &count) != 0) {
			if (state_db_error(t, v) != VERDICT_CONTINUE)
				return v->action;
			continue;
		}
		if (count > rl->limit)
			return ratelimit_hit(t, rl, count, v);
	}
	return VERDICT_CONTINUE;
}
