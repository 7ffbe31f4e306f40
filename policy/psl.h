/*
 * psl.h - the public suffix list and the organizational domain
 * (RFC 7489 §3.2) of a domain name.
 *
 * The list is Mozilla's public_suffix_list.dat (Debian: package
 * publicsuffix). Both the ICANN and the PRIVATE sections are used, so a
 * customer of a hosting suffix (foo.github.io) is its own organization.
 * Rules in Unicode do not match A-labels (XXX: no IDNA conversion).
 *
 * psl_open() loads a file once per process: a second open of the same
 * path shares the loaded list (reference counted). Lookups only read it
 * and are thread-safe.
 */
#ifndef MXW_PSL_H
#define MXW_PSL_H

#include <stddef.h>

struct psl;

/* psl_open - load (or share) the list at path; NULL + err on failure. */
struct psl	*psl_open(const char *path, char *err, size_t errlen);
/* psl_close - drop a reference; NULL is a no-op. */
void		 psl_close(struct psl *p);
/* psl_from_text - a private list from text (tests); psl_close frees it. */
struct psl	*psl_from_text(const char *text);

/*
 * psl_org_domain - the organizational domain of name (lower-cased, no
 * trailing dot) into out: the public suffix plus one label; name itself
 * when it is a public suffix. 0, or -1 when name is empty or out is too
 * small.
 */
int		 psl_org_domain(const struct psl *p, const char *name, char *out,
		    size_t outlen);

#endif
