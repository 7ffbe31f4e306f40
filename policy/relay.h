/*
 * relay.h - relay control: who may send to which recipients, and mail
 * that claims one of our domains from outside (LOCAL_SPOOF).
 *
 * Inputs: internal_networks and local_domains (rule lists) and SMTP
 * AUTH (t->auth_user). Active when local_domains has entries. Pure
 * functions of the txn and the rule set; thread-safe.
 */
#ifndef MXW_RELAY_H
#define MXW_RELAY_H

#include "txn.h"

struct rules;

/*
 * chk_relay_rcpt_local - is rcpt (as given to RCPT TO) a plain address
 * in one of the local domains? Source routes, '%', '!' and '@' in the
 * local part, address literals and unparsable addresses are not local;
 * "postmaster" alone is (RFC 5321 §4.5.1).
 */
int	 chk_relay_rcpt_local(const struct rules *r, const char *rcpt);

/*
 * chk_relay_rcpt - at RCPT, for the newest recipient: an external,
 * unauthenticated client may only send to local recipients; otherwise
 * RELAY_DENIED (554 5.7.1 Relay access denied; the recipient is dropped
 * from the txn). Returns the action (CONTINUE when allowed).
 */
enum verdict_action chk_relay_rcpt(struct txn *t, struct verdict *v);

/*
 * chk_relay_eom - at end of message: a local-domain envelope sender
 * towards a local recipient from an external unauthenticated client,
 * authenticated neither by SPF nor by a DKIM signature of that domain,
 * adds LOCAL_SPOOF (its score or action come from the rule set).
 */
void	 chk_relay_eom(struct txn *t);

#endif
