/*
 * authres.h - the headers mxwarden adds: Authentication-Results (RFC
 * 8601) and the spam verdict in SpamAssassin's form (X-Spam-Flag,
 * X-Spam-Status), and recognising forged ones to remove.
 *
 * Pure functions over a finished txn; thread-safe. Returned strings are
 * allocated; the caller frees them. Values are folded with "\n\t" (the
 * milter convention); they carry no leading space.
 */
#ifndef MXW_AUTHRES_H
#define MXW_AUTHRES_H

#include "txn.h"

/* authres_build - the Authentication-Results value: "id; iprev=...;
 * spf=...; dkim=... (one per signature); dmarc=..." or "id; none". */
char	*authres_build(const struct txn *t, const char *authserv_id);

/* authres_is_ours - non-zero if an Authentication-Results value claims
 * authserv_id (compared case-insensitively, CFWS and a version skipped). */
int	 authres_is_ours(const char *value, const char *authserv_id);

/* authres_spam_status - "Yes, score=7.5 required=5.0 tests=A,B" (tests
 * sorted by name, "NONE" when there are none). required < 0 when no
 * threshold is set: "required=none". */
char	*authres_spam_status(const struct txn *t, double required, int is_spam);

/* authres_value - append v to buf as an RFC 8601 value: a token as is,
 * otherwise a quoted-string. Used by the trace printer too. */
struct buf;
void	 authres_value(struct buf *b, const char *v);

#endif
