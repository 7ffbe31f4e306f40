/*
 * sender.h - the sender domain check (RFC 5321 §5, RFC 7505).
 *
 * Called by the engine at MAIL FROM for t->mail_domain, or for the
 * address literal of t->mail_from (SENDER_INVALID); the null sender is
 * not checked. Symbols:
 *   SENDER_INVALID    malformed domain (syntax, single label, address
 *                     literal): no DNS query is made
 *   SENDER_NXDOMAIN   the domain does not exist
 *   SENDER_NULL_MX    a null MX (RFC 7505: one MX, exchange "."): the
 *                     domain sends and accepts no mail
 *   SENDER_NO_MX      no MX and no A/AAAA (no implicit MX either)
 *   SENDER_TEMPERROR  SERVFAIL or timeout
 * A domain with MX records, or without MX but with A/AAAA, gets no symbol.
 *
 * Thread safety: reentrant.
 */
#ifndef MXW_SENDER_H
#define MXW_SENDER_H

#include <stddef.h>

struct txn;
struct dns;

enum chk_sender_res {
	CHK_SENDER_OK,
	CHK_SENDER_INVALID,
	CHK_SENDER_NXDOMAIN,
	CHK_SENDER_NULL_MX,
	CHK_SENDER_NO_MX,
	CHK_SENDER_TEMPERROR,
};

/*
 * chk_sender_eval - the lookups and the decision for one domain, without
 * a txn; a short reason goes to why (may be NULL). Used by
 * chk_sender_run and the unit tests.
 */
enum chk_sender_res chk_sender_eval(struct dns *d, const char *domain,
		    char *why, size_t whylen);

/* chk_sender_symbol - "SENDER_NXDOMAIN" ..., NULL for CHK_SENDER_OK. */
const char	*chk_sender_symbol(enum chk_sender_res r);

/* chk_sender_run - chk_sender_eval on t->mail_domain (or the address
 * literal of t->mail_from); adds the symbol. */
void		 chk_sender_run(struct txn *t, struct dns *d);

#endif
