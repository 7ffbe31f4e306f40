/*
 * spf_record.h - RFC 7208 record syntax: the validator (ABNF of §12 plus
 * the §6 and §7.1 rules a parser can check) and the rewrite that turns a
 * valid record into one libspf2 1.2.10 evaluates the way RFC 7208 says.
 *
 * policy/spf.c runs chk_spfrec_validate() on every selected record
 * (top level, include, redirect): a record it refuses is a permerror,
 * whatever libspf2 would have made of it. chk_spfrec_rewrite() then
 * works around what libspf2 gets wrong on valid records:
 *   - unknown modifiers (names with "." or "_" make libspf2 fail to
 *     compile) are dropped: RFC 7208 §6 says to ignore them;
 *   - redirect= is moved to the end (libspf2 evaluates it where it
 *     stands) and dropped when the record has an "all" mechanism (§6.1);
 *   - CIDR length 0, which libspf2 refuses to compile: ip4:X/0 and
 *     ip6:X/0 become the two /1 halves of the address space; for a and
 *     mx, the length of the other address family is dropped (it cannot
 *     matter) and a length 0 of the client's family becomes "no length"
 *     on the domain plus CHK_SPFREC_ANY_SUFFIX, which tells spf.c's DNS
 *     layer to answer any address of that name with the client's own.
 * chk_spfrec_exp_ok() checks an explanation text (§6.2: explain-string,
 * printable ASCII) before libspf2 expands it.
 *
 * All functions are pure and thread-safe.
 */
#ifndef MXW_SPF_RECORD_H
#define MXW_SPF_RECORD_H

#include <stddef.h>

/* Appended to a/mx domains whose CIDR length for the client's family is
 * 0; a reserved name (RFC 6761 .invalid) that is never queried. */
#define CHK_SPFREC_ANY_SUFFIX	".mxw-any-address.invalid"

/*
 * chk_spfrec_validate - 0 if txt (len octets, "v=spf1 ...") is a valid
 * RFC 7208 record; -1 and the first problem in why otherwise: octets
 * other than printable ASCII and space, unknown mechanisms, bad
 * domain-spec (macro syntax, domain-end), bad ip4/ip6 networks or CIDR
 * lengths, redirect= or exp= twice, bad modifier names or values, the
 * macro letters c, r, t outside explanation text.
 */
int	 chk_spfrec_validate(const char *txt, size_t len, char *why,
	    size_t whylen);

/*
 * chk_spfrec_rewrite - the record libspf2 should compile, for a client
 * of address family 4 or 6 (see above). txt must have passed
 * chk_spfrec_validate(). Returns an allocated string (the caller frees
 * it); *any is set to 1 when CHK_SPFREC_ANY_SUFFIX was used, else 0.
 */
char	*chk_spfrec_rewrite(const char *txt, size_t len, int family,
	    int *any);

/*
 * chk_spfrec_exp_ok - 1 if txt (len octets) is usable explanation text:
 * printable ASCII and spaces, valid macro-expands (all letters allowed).
 * 0 otherwise: the default explanation is used instead (§6.2).
 */
int	 chk_spfrec_exp_ok(const char *txt, size_t len);

#endif
