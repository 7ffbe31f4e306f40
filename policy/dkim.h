/*
 * dkim.h - DKIM signature verification (RFC 6376, RFC 8463) with
 * libopendkim; public keys are fetched through our resolver (dns.h).
 *
 * One struct chk_dkim per process (it holds the shared DKIM_LIB); the
 * per-message state lives in t->dkim_state. Per message the engine calls,
 * in this order:
 *   chk_dkim_header()  once per header field, in message order
 *   chk_dkim_eoh()     at the end of the header
 *   chk_dkim_body()    per body chunk (CRLF line ends)
 *   chk_dkim_eom()     fills t->dkim[], t->ndkim and the symbols
 *   chk_dkim_txn_free() on reset and free
 *
 * Results per signature (t->dkim[i].res):
 *   pass       signature and body hash verified
 *   fail       signature or body hash mismatch, key revoked (empty p=,
 *              RFC 6376 §3.6.1/§6.1.2: "a failed signature check"),
 *              signature expired (x= in the past beyond the clock drift)
 *   permerror  unusable signature (syntax, missing tags, unknown
 *              algorithm, rsa-sha1 or an RSA key under 1024 bits per
 *              RFC 8301), no key (NXDOMAIN/NODATA), bad key record
 *   temperror  key lookup SERVFAIL or timeout
 * At most CHK_DKIM_MAX_SIGS signatures are verified; later ones are
 * ignored (logged). Symbols: DKIM_PASS, DKIM_FAIL, DKIM_PERMERROR,
 * DKIM_TEMPERROR (each once, detail lists the d= domains), or DKIM_NONE
 * when the message carries no DKIM-Signature.
 *
 * Thread safety: chk_dkim_* may run concurrently for different txns.
 */
#ifndef MXW_DKIM_H
#define MXW_DKIM_H

#include <stddef.h>

#include "txn.h"

#define CHK_DKIM_MAX_SIGS	8	/* signatures verified per message */
#define CHK_DKIM_CLOCK_DRIFT	300	/* seconds of tolerance for t=/x= */

struct dns;
struct chk_dkim;

/* chk_dkim_new - set up libopendkim; d is borrowed (must outlive the
 * result). NULL and a reason in err on failure. */
struct chk_dkim	*chk_dkim_new(struct dns *d, char *err, size_t errlen);
/* chk_dkim_free - NULL is a no-op. No txn may still use c. */
void		 chk_dkim_free(struct chk_dkim *c);

/* chk_dkim_header - one header field; value is the raw text after the
 * colon (leading white space and folding kept; "\r\n" or "\n"). */
void	chk_dkim_header(struct chk_dkim *c, struct txn *t, const char *name,
	    const char *value);
/* chk_dkim_eoh - end of header; key lookups happen here. */
void	chk_dkim_eoh(struct chk_dkim *c, struct txn *t);
/* chk_dkim_body - a body chunk with CRLF line ends. */
void	chk_dkim_body(struct chk_dkim *c, struct txn *t,
	    const unsigned char *p, size_t n);
/* chk_dkim_eom - finish: t->dkim[]/t->ndkim (replacing earlier results)
 * and symbols. Safe without any earlier call (then DKIM_NONE). */
void	chk_dkim_eom(struct chk_dkim *c, struct txn *t);
/* chk_dkim_txn_free - free t->dkim_state and t->dkim[]; idempotent. */
void	chk_dkim_txn_free(struct txn *t);

#endif
