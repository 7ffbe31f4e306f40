/*
 * harvest.h - directory-harvest control: invalid recipients counted per
 * client IP in a window (store counter "harvest"); tarpit delays that
 * grow with the count; past "harvest threshold" the client is blocked
 * (store entry "block", value "harvest") for "harvest block" seconds
 * and gets 421 4.7.0 at connect, 450 4.7.1 for everything else
 * (HARVEST_BLOCKED). Internal and whitelisted clients are exempt.
 *
 * Invalid recipients are known from: the rule list valid_recipients
 * (milter mode; Postfix must pass unknown recipients on, with
 * smtpd_reject_unlisted_recipient = no), Sendmail's {rcpt_mailer} =
 * error, and the backend's 5xx answers to RCPT (proxy mode): the
 * front ends report those through eng_bad_rcpt() (engine.h).
 *
 * Thread-safe; state only in the store.
 */
#ifndef MXW_HARVEST_H
#define MXW_HARVEST_H

#include "txn.h"

struct store;

/* Defaults of the harvest settings (rules: "harvest NAME VALUE"). */
#define HARVEST_THRESHOLD	20	/* invalid recipients; 0 = off */
#define HARVEST_WINDOW		3600	/* seconds */
#define HARVEST_BLOCK		3600	/* seconds */
#define HARVEST_TARPIT_MS	200	/* per invalid recipient so far */
#define HARVEST_TARPIT_MAX_MS	3000

/* chk_harvest_blocked - at connect (421 4.7.0) and MAIL/RCPT (450
 * 4.7.1): is the client blocked? */
enum verdict_action chk_harvest_blocked(struct txn *t, struct store *s,
	    enum txn_event ev, struct verdict *v);

/*
 * chk_harvest_rcpt - at RCPT: the newest recipient checked against
 * valid_recipients (when the list exists and the recipient's domain is
 * local): an unknown one is refused (550 5.1.1, RCPT_UNKNOWN) and
 * counted via chk_harvest_bad_rcpt().
 */
enum verdict_action chk_harvest_rcpt(struct txn *t, struct store *s,
	    struct verdict *v);

/*
 * chk_harvest_bad_rcpt - count one invalid recipient for the client
 * (t->bad_rcpt too); sleeps the tarpit delay; at the threshold blocks
 * the client and returns a HARVEST_BLOCKED verdict, else CONTINUE.
 */
enum verdict_action chk_harvest_bad_rcpt(struct txn *t, struct store *s,
	    const char *rcpt, struct verdict *v);

#endif
