/*
 * dmarc.h - DMARC (RFC 7489): From-domain alignment of SPF and DKIM,
 * policy discovery and the requested disposition.
 *
 * One struct chk_dmarc per process. At end of message, after SPF and
 * DKIM, the engine calls chk_dmarc_run(), which reads t->hdr (the From
 * field), t->spf, t->dkim[] and t->mail_from, and writes t->from_domain,
 * t->dmarc and one symbol:
 *   DMARC_PASS             an aligned SPF or DKIM pass
 *   DMARC_FAIL_REJECT      no aligned pass; disposition reject
 *   DMARC_FAIL_QUARANTINE  ... quarantine
 *   DMARC_FAIL_NONE        ... none (p=none, or pct= sampled it down)
 *   DMARC_NONE             no DMARC record
 *   DMARC_TEMPERROR        DNS failure during policy discovery
 *   DMARC_PERMERROR        not exactly one From address with a valid
 *                          domain, or an unusable DMARC record
 * t->dmarc.policy is the policy the record asks for (p=, or sp= when the
 * record came from the organizational domain); t->dmarc.disposition is
 * what applies after pct= sampling (RFC 7489 §6.6.4: a message not
 * sampled gets the next weaker policy).
 *
 * Thread safety: chk_dmarc_run() may run concurrently for different txns.
 */
#ifndef MXW_DMARC_H
#define MXW_DMARC_H

#include <stddef.h>

#include "txn.h"

struct dns;
struct chk_dmarc;

/* chk_dmarc_new - d is borrowed; psl_path is the public suffix list.
 * NULL + err on failure (unreadable list). */
struct chk_dmarc *chk_dmarc_new(struct dns *d, const char *psl_path,
		    char *err, size_t errlen);
void		 chk_dmarc_free(struct chk_dmarc *c);

/* chk_dmarc_run - evaluate DMARC for the message in t (see above). */
void		 chk_dmarc_run(struct chk_dmarc *c, struct txn *t);

enum chk_dmarc_disc {
	CHK_DMARC_FOUND,	/* *record etc. set */
	CHK_DMARC_NORECORD,
	CHK_DMARC_DNSERROR,	/* temporary: SERVFAIL, timeout */
};

/*
 * chk_dmarc_discover - policy discovery (RFC 7489 §6.6.3): _dmarc.FROM
 * TXT, else _dmarc.ORGDOMAIN; only records starting with "v=DMARC1"
 * count, and more than one such record at a name means none. On FOUND
 * the caller frees *record (the TXT text) and *record_domain (where it
 * was found); *org_domain (the From domain's organizational domain) is
 * set for every outcome and freed by the caller. The one place that
 * knows how the organizational domain is found (a later change may walk
 * the DNS tree as DMARCbis does).
 */
enum chk_dmarc_disc chk_dmarc_discover(struct chk_dmarc *c,
		    const char *from_domain, char **record,
		    char **record_domain, char **org_domain);

/*
 * chk_dmarc_from_domain - the domain of the single address in a From
 * field value (raw, folded). 0 and the lower-case domain in out, or -1
 * and a reason ("no address", "multiple addresses", "bad domain").
 */
int		 chk_dmarc_from_domain(const char *value, char *out,
		    size_t outlen, const char **why);

#endif
