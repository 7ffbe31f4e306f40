/*
 * relay.c - relay control (see relay.h).
 *
 * Called by the engine at RCPT (chk_relay_rcpt) and at end of message
 * (chk_relay_eom). Owns nothing; pure functions of the txn and rules;
 * thread-safe. Addresses are parsed with policy/addr.c: a recipient is
 * local only when it is a plain local@domain with domain in
 * local_domains, so the classic tricks (user%other@local,
 * "user@other"@local, @local:user@other, other!user@local,
 * user@[127.0.0.1]) never pass as local.
 */
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "engine.h"
#include "relay.h"
#include "rules.h"
#include "state.h"
#include "util.h"

static int
relay_active(const struct rules *r)
{
	return rules_list_count(r, "local_domains") > 0;
}

int
chk_relay_rcpt_local(const struct rules *r, const char *rcpt)
{
	struct addr a;
	const char *s = rcpt;
	size_t n;

	while (*s == ' ')
		s++;
	n = strlen(s);
	if ((n == 10 && strcasecmp(s, "postmaster") == 0) ||
	    (n == 12 && strcasecmp(s, "<postmaster>") == 0))
		return 1;
	if (addr_parse(rcpt, &a) != ADDR_OK || a.literal || addr_is_routed(&a))
		return 0;
	return rules_list_has_domain(r, "local_domains", a.domain);
}

enum verdict_action
chk_relay_rcpt(struct txn *t, struct verdict *v)
{
	const struct rules *r = eng_rules(t);

	memset(v, 0, sizeof(*v));
	if (t->client_internal || t->auth_user != NULL || t->nrcpt == 0 ||
	    !relay_active(r))
		return VERDICT_CONTINUE;
	if (chk_relay_rcpt_local(r, t->rcpt[t->nrcpt - 1]))
		return VERDICT_CONTINUE;
	state_verdict(t, v, "RELAY_DENIED", t->rcpt[t->nrcpt - 1], VERDICT_REJECT,
	    "554 5.7.1 Relay access denied", 0);
	state_drop_last_rcpt(t);
	return v->action;
}

void
chk_relay_eom(struct txn *t)
{
	const struct rules *r = eng_rules(t);
	int local_rcpt = 0;

	if (t->client_internal || t->auth_user != NULL || !relay_active(r) ||
	    t->mail_domain == NULL ||
	    !rules_list_has_domain(r, "local_domains", t->mail_domain))
		return;
	for (size_t i = 0; i < t->nrcpt && !local_rcpt; i++)
		local_rcpt = chk_relay_rcpt_local(r, t->rcpt[i]);
	if (!local_rcpt)
		return;
	if (t->spf.res == CHK_PASS && t->spf.domain != NULL &&
	    strcasecmp(t->spf.domain, t->mail_domain) == 0)
		return;
	for (size_t i = 0; i < t->ndkim; i++)
		if (t->dkim[i].res == CHK_PASS && t->dkim[i].domain != NULL &&
		    (strcasecmp(t->dkim[i].domain, t->mail_domain) == 0 ||
		    rules_list_has_domain(r, "local_domains", t->dkim[i].domain)))
			return;
	txn_symbol(t, "LOCAL_SPOOF", t->mail_domain);
}
