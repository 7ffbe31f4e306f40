/*
 * state.h - helpers shared by the checks that keep state in the store
 * (relay.c, harvest.c, ratelimit.c, greylist.c): the client's network
 * key, the database-error outcome (on_db_error), the whitelist and the
 * verdict a state symbol gives.
 *
 * Pure or store-backed; thread-safe (no static data).
 */
#ifndef MXW_STATE_H
#define MXW_STATE_H

#include <stddef.h>
#include <time.h>

#include "txn.h"

struct store;

/* state_now - the time the state checks use: time(NULL), plus the skew
 * unit tests set with state_clock_skew() to move through windows
 * without sleeping (always 0 in the daemons). */
time_t	 state_now(void);
/* state_clock_skew - add secs to state_now() (tests only; atomic). */
void	 state_clock_skew(long secs);

/* state_net_key - the client's /24 (IPv4) or /64 (IPv6) as
 * "192.0.2.0/24" / "2001:db8:1:2::/64"; the address itself when it
 * does not parse. */
void	 state_net_key(const char *ip, char *out, size_t outlen);

/* state_ip_in - ip equals entry, or is inside entry when entry is a
 * CIDR. */
int	 state_ip_in(const char *ip, const char *entry);

/*
 * state_blocked - is the client blocked (kind "block": an IP or CIDR,
 * by harvesting or by `mxwarden db block`)? 1, 0, or -1 on a store
 * error. reason (may be NULL) gets the entry's value.
 */
int	 state_blocked(struct store *s, const char *ip, time_t now, char *reason,
	    size_t rlen);

/* state_block_gen, state_block_written - a counter of the blocks this
 * process has written (harvesting): a "not blocked" answer remembered
 * by a session holds while it is unchanged (and for the same second:
 * blocks written by another process, `mxwarden db block`, are seen by
 * open sessions within a second, by new ones at once). */
unsigned state_block_gen(void);
void	 state_block_written(void);

/* state_whitelisted - the client IP/CIDR, the envelope sender or
 * "@domain" of it is in the store's whitelist (`mxwarden db whitelist`).
 * 1, 0 or -1. */
int	 state_whitelisted(struct store *s, const struct txn *t, time_t now);

/*
 * state_verdict - decide for symbol: the rule set's action and reply
 * for it when it has one, else def_action with def_reply ("451 4.7.1
 * text"). detail goes to the symbol; add_symbol 0 keeps it out of the
 * message's symbols (a decision about one recipient only). Returns the
 * action.
 */
enum verdict_action state_verdict(struct txn *t, struct verdict *v,
	    const char *symbol, const char *detail, enum verdict_action def_action,
	    const char *def_reply, int add_symbol);

/*
 * state_db_error - the store failed: on_db_error = tempfail gives a
 * 451 4.3.0 verdict; accept adds STATE_DB_ERROR and a note header once
 * per message and returns CONTINUE.
 */
enum verdict_action state_db_error(struct txn *t, struct verdict *v);

/* state_drop_last_rcpt - forget the newest recipient (it was refused). */
void	 state_drop_last_rcpt(struct txn *t);

#endif
