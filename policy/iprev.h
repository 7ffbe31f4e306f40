/*
 * iprev.h - the iprev check (RFC 8601 §3): forward-confirmed reverse DNS
 * of the SMTP client address.
 *
 * Called by the engine at connect. Results go into t->iprev and
 * t->iprev_name and as one of the symbols IPREV_PASS, IPREV_FAIL,
 * IPREV_NONE (no PTR record; the RFC 8601 result is permerror) or
 * IPREV_TEMPERROR.
 *
 * Thread safety: reentrant; the txn belongs to the calling thread.
 */
#ifndef MXW_IPREV_H
#define MXW_IPREV_H

#include <stddef.h>

struct txn;
struct dns;

/* At most this many PTR names are checked forward (the rest ignored). */
#define CHK_IPREV_MAX_NAMES	10

/*
 * chk_iprev_run - look up the PTR names of t->client_ip, then the A (or
 * AAAA) records of each of the first CHK_IPREV_MAX_NAMES names; pass when
 * one of them holds the client address. IPv4-mapped IPv6 clients are
 * checked as IPv4. Sets t->iprev (CHK_PASS, CHK_FAIL, CHK_TEMPERROR,
 * CHK_PERMERROR) and t->iprev_name (the confirmed name; on fail the first
 * PTR name; NULL otherwise; any old value is freed). A client address that
 * is not an IP address (e.g. "unknown") leaves CHK_NONE and no symbol.
 */
void	chk_iprev_run(struct txn *t, struct dns *d);

/*
 * chk_iprev_ip_parse - parse an IPv4 or IPv6 address in presentation
 * form into out: 4 octets for IPv4 and for IPv4-mapped IPv6
 * (::ffff:a.b.c.d), else 16. Returns the number of octets (4 or 16), or
 * 0 if ip is not an address. Used by the HELO and SPF checks too.
 */
int	chk_iprev_ip_parse(const char *ip, unsigned char out[16]);

#endif
