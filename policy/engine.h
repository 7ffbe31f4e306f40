/*
 * engine.h - the policy engine: runs the checks at each SMTP stage,
 * scores the symbols and decides.
 *
 * Front ends (filter/milter.c, later filter/proxy.c, and the offline
 * `mxwarden check`) use only this header and txn.h: the engine knows
 * nothing of libmilter or sockets.
 *
 *   e = eng_new(cfg, rules, err, len);     once, at start-up
 *   t = eng_txn_new(e);                    at connect
 *   txn_set_client(t, ...); eng_event(t, TXN_EV_CONNECT, &v);
 *   txn_set_helo(t, ...);   eng_event(t, TXN_EV_HELO, &v);
 *   txn_set_mail(t, ...);   eng_event(t, TXN_EV_MAIL, &v);
 *   txn_add_rcpt(t, ...);   eng_event(t, TXN_EV_RCPT, &v);  per recipient
 *   txn_add_header(t, ...); eng_event(t, TXN_EV_HEADER, &v); per header
 *   eng_event(t, TXN_EV_EOH, &v);
 *   eng_body(t, data, len, &v);                             per chunk
 *   eng_event(t, TXN_EV_EOM, &v);  then apply t->hdrop[] and v
 *   eng_txn_reset(t);  on RSET / next MAIL;   eng_txn_free(t) at close
 *
 * Each call returns v->action: VERDICT_CONTINUE, or a decision the front
 * end enforces at once (reject, tempfail, discard; accept ends checking
 * for this message). At EOM the result is never CONTINUE.
 *
 * Thread safety: eng_event on different txns may run concurrently. The
 * config/rules snapshot is swapped atomically by eng_reload(); a txn
 * keeps the snapshot it started with until eng_txn_free().
 */
#ifndef MXW_ENGINE_H
#define MXW_ENGINE_H

#include <stddef.h>

#include "txn.h"

struct cfg;
struct rules;
struct dns;

/* eng_new - takes ownership of cfg and rules. NULL + err on failure
 * (resolver or library set-up failed). */
struct eng	*eng_new(struct cfg *cfg, struct rules *rules, char *err,
		    size_t errlen);
/* eng_new_dns - the same with a given resolver (tests use a static
 * one); takes ownership of d too. */
struct eng	*eng_new_dns(struct cfg *cfg, struct rules *rules, struct dns *d,
		    char *err, size_t errlen);
void		 eng_free(struct eng *e);

/* eng_reload - install a new snapshot (takes ownership). */
void		 eng_reload(struct eng *e, struct cfg *cfg, struct rules *rules);

struct txn	*eng_txn_new(struct eng *e);
void		 eng_txn_reset(struct txn *t);
void		 eng_txn_free(struct txn *t);

enum verdict_action eng_event(struct txn *t, enum txn_event ev,
		    struct verdict *v);
enum verdict_action eng_body(struct txn *t, const unsigned char *data,
		    size_t len, struct verdict *v);

/*
 * eng_bad_rcpt - a front end learnt that rcpt does not exist: the
 * MTA refused it (Sendmail {rcpt_mailer} = error) or the backend
 * answered 5xx to RCPT (proxy mode). Counts it for harvest control
 * (policy/harvest.c); past the threshold the client is blocked and the
 * verdict (HARVEST_BLOCKED, 421) is returned, else CONTINUE.
 */
enum verdict_action eng_bad_rcpt(struct txn *t, const char *rcpt,
		    struct verdict *v);

/* eng_set_store - where finished transactions are recorded (history);
 * NULL for none. Set before serving; the caller closes it after
 * eng_free(). */
struct store;
void		 eng_set_store(struct eng *e, struct store *s);

/* Access for front ends and the trace printer. */
const struct cfg   *eng_cfg(const struct txn *t);
const struct rules *eng_rules(const struct txn *t);
struct dns	   *eng_dns(const struct eng *e);

#endif
