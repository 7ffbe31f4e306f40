/*
 * helo.h - the HELO/EHLO argument check (RFC 5321 §4.1.1.1, §4.1.3).
 *
 * Called by the engine at HELO. Symbols:
 *   HELO_INVALID           empty, control characters, spaces, bad syntax
 *   HELO_BARE_IP           an IP address not in [brackets]
 *   HELO_LITERAL_MISMATCH  an address literal that is not the client IP
 *   HELO_NOT_FQDN          a host name without a dot
 *   HELO_FORGED_OURS       our own host name (or a name under it) from a
 *                          client outside internal_networks
 *   HELO_NXDOMAIN          a FQDN with no A, AAAA or MX record
 * DNS errors give no symbol. The HELO name's SPF is in spf.h.
 *
 * Thread safety: reentrant.
 */
#ifndef MXW_HELO_H
#define MXW_HELO_H

#include <stddef.h>

struct txn;
struct dns;

enum chk_helo_kind {
	CHK_HELO_FQDN,		/* a syntactically valid name with a dot */
	CHK_HELO_NOT_FQDN,	/* a valid single label ("localhost") */
	CHK_HELO_LITERAL,	/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" */
	CHK_HELO_BARE_IP,	/* "192.0.2.1", "2001:db8::1" */
	CHK_HELO_INVALID,	/* anything else */
};

/*
 * chk_helo_classify - pure syntax classification of a HELO argument.
 * For CHK_HELO_LITERAL and CHK_HELO_BARE_IP the address (presentation
 * form, without brackets and "IPv6:" tag) is copied to ip (size iplen);
 * for CHK_HELO_INVALID a short reason goes to ip. ip may be NULL.
 */
enum chk_helo_kind chk_helo_classify(const char *helo, char *ip,
		    size_t iplen);

/*
 * chk_helo_hostname_ok - non-zero when name is a host name by RFC 5321
 * (letter/digit labels with inner hyphens, 1..63 octets each, 253 in
 * all, an optional trailing dot, a top label that is not all digits).
 * Octets >= 0x80 are accepted as label characters (UTF-8 U-labels).
 * Does not require a dot.
 */
int	chk_helo_hostname_ok(const char *name);

/*
 * chk_helo_run - classify t->helo, compare literals with t->client_ip,
 * compare names with our_hostname and t->our_hostname (either may be
 * NULL), and for a FQDN look up A, AAAA, then MX. Adds symbols only.
 */
void	chk_helo_run(struct txn *t, struct dns *d, const char *our_hostname);

#endif
