/*
 * addr.h - parsing of envelope addresses (RFC 5321 §4.1.2).
 *
 * Pure functions, thread-safe. Used by txn.c for MAIL FROM / RCPT TO and
 * by the checks that need the domain of an address.
 */
#ifndef MXW_ADDR_H
#define MXW_ADDR_H

#include <stddef.h>

enum addr_status {
	ADDR_OK,
	ADDR_NULL,		/* <> : the null reverse-path */
	ADDR_BAD_SYNTAX,	/* unbalanced <>, quotes, control chars, ... */
	ADDR_NO_DOMAIN,		/* "user" without @domain */
	ADDR_BAD_DOMAIN,	/* domain is not a valid host name or literal */
	ADDR_TOO_LONG,		/* over the RFC 5321 limits (64/255/256) */
};

struct addr {
	char	 local[65];	/* local part as written, quotes kept */
	char	 domain[256];	/* lower-case, no trailing dot; may be a
				 * literal "[1.2.3.4]" */
	int	 literal;	/* domain is an address literal */
	int	 had_route;	/* a source route "@a,@b:" was dropped */
};

/*
 * addr_parse - parse an envelope address, with or without angle
 * brackets and ESMTP parameters already removed. Fills *a on ADDR_OK.
 */
enum addr_status addr_parse(const char *in, struct addr *a);
const char	*addr_status_name(enum addr_status s);

/* addr_domain_ok - a syntactically valid host name (letters, digits,
 * hyphens, labels 1..63, at least one dot not required). */
int		 addr_domain_ok(const char *d);


/*
 * addr_is_routed - the address asks for more routing than "local@domain"
 * names: a source route was given, or the local part (quoted or not)
 * holds '%', '!' or '@' (the "percent hack", bang paths, a quoted
 * address). A relay control must treat such a recipient as not local.
 */
int		 addr_is_routed(const struct addr *a);

#endif
