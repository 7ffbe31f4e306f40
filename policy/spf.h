/*
 * spf.h - the SPF check (RFC 7208) of the HELO and MAIL FROM identities,
 * via libspf2 with all its DNS going through our resolver (dns.h).
 *
 * The engine makes one struct chk_spf per struct dns (at start-up or
 * reload) and calls chk_spf_helo() at HELO and chk_spf_mailfrom() at
 * MAIL FROM. Results go into t->spf_helo and t->spf, and as symbols:
 *   HELO_SPF_PASS, HELO_SPF_FAIL, HELO_SPF_SOFTFAIL   (HELO identity)
 *   SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL, SPF_NONE,
 *   SPF_TEMPERROR, SPF_PERMERROR                       (t->spf)
 *
 * Fixed against plain libspf2 1.2.10:
 *   - loopback clients (127/8, ::1) are evaluated like any other client
 *     (libspf2 itself answers "pass" for them);
 *   - DNS errors are temperror, records that fail to compile permerror,
 *     IPv4-mapped IPv6 clients are evaluated as IPv4, malformed or
 *     single-label domains give "none" before any query;
 *   - RFC 7208 §4.6.4 limits per evaluation: at most 10 DNS-querying
 *     terms shared across include/redirect, 2 void lookups, 10 PTR names,
 *     and an overall time budget (temperror when exceeded);
 *   - an MX answer naming more than 10 hosts is a permerror; a DNS error
 *     on the address of a PTR name skips that name (RFC 7208 §5.5);
 *     names over 253 octets after macro expansion are cut from the left;
 *   - explanation text that is not printable ASCII or has bad macros
 *     gives the default explanation (RFC 7208 §6.2);
 *   - the receiving host name (%{r}) is ours, and the default explanation
 *     names no outside web site.
 * Every candidate record passes the RFC 7208 record-syntax validator
 * (chk_spf_record_check(), spf_record.h) before libspf2 compiles it, and
 * is then rewritten into a form libspf2 evaluates correctly (unknown
 * modifiers dropped, redirect= last, CIDR length 0).
 *
 * Thread safety: one struct chk_spf may be used by any number of threads
 * at once; each evaluation keeps its own state (see spf.c).
 */
#ifndef MXW_SPF_H
#define MXW_SPF_H

#include <stddef.h>

#include "txn.h"

struct dns;
struct chk_spf;

#define CHK_SPF_BUDGET_MS	20000	/* RFC 7208 §4.6.4: at least 20 s */
#define CHK_SPF_MAX_DNS_MECH	10
#define CHK_SPF_MAX_VOID	2

/*
 * chk_spf_new - an SPF evaluator on resolver d (not owned; it must
 * outlive the evaluator). receiving_host is our host name for %{r} and
 * comments (NULL: gethostname()). NULL and a reason in err on failure.
 */
struct chk_spf	*chk_spf_new(struct dns *d, const char *receiving_host,
		    char *err, size_t errlen);
/* chk_spf_free - NULL is a no-op. No evaluation may be running. */
void		 chk_spf_free(struct chk_spf *s);

/* chk_spf_set_limits - change the per-evaluation limits (values <= 0
 * keep the current one). Call before any evaluation starts. */
void		 chk_spf_set_limits(struct chk_spf *s, int budget_ms,
		    int max_dns_mech, int max_void);

/*
 * chk_spf_helo - evaluate the HELO identity (RFC 7208 §2.3) into
 * t->spf_helo (identity "helo", sender "postmaster@HELO"). A HELO that
 * is not a FQDN gives "none" without a query. Symbols only for pass,
 * fail and softfail.
 */
void		 chk_spf_helo(struct chk_spf *s, struct txn *t);

/*
 * chk_spf_mailfrom - evaluate MAIL FROM into t->spf (identity
 * "mailfrom", sender the full address). For the null sender t->spf is
 * the HELO identity's result (evaluated now if chk_spf_helo() did not
 * run). Adds one SPF_* symbol.
 */
void		 chk_spf_mailfrom(struct chk_spf *s, struct txn *t);

/*
 * chk_spf_check - one evaluation without a txn: client ip, helo (may be
 * NULL), sender ("user@domain", or "postmaster@HELO" for the HELO
 * identity), helo_identity non-zero for the HELO identity. Returns the
 * result; a short human reason goes to reason.
 */
enum chk_res	 chk_spf_check(struct chk_spf *s, const char *ip,
		    const char *helo, const char *sender, int helo_identity,
		    char *reason, size_t reasonlen);

/*
 * chk_spf_eval - chk_spf_check() that also copies the explanation of a
 * "fail" (RFC 7208 §6.2: the expanded exp= text, or our default) into
 * exp (may be NULL); exp is "" for the other results.
 */
enum chk_res	 chk_spf_eval(struct chk_spf *s, const char *ip,
		    const char *helo, const char *sender, int helo_identity,
		    char *reason, size_t reasonlen, char *exp, size_t explen);

/* --- pure helpers, unit-tested on their own --- */

/* chk_spf_domain_ok - RFC 7208 §4.3: a well-formed, multi-label domain
 * (labels 1..63, total <= 253, trailing dot allowed). */
int		 chk_spf_domain_ok(const char *domain);

/* chk_spf_is_record - the text is an SPF version 1 record: "v=spf1"
 * (any case) followed by a space or the end (RFC 7208 §4.5). */
int		 chk_spf_is_record(const char *txt, size_t len);

/*
 * chk_spf_record_check - checks on a selected record before libspf2
 * compiles it: the RFC 7208 record-syntax validator (spf_record.h). 0
 * when it may be compiled; -1 and a reason when it is a permerror (NUL,
 * control or non-ASCII octets, any syntax error of RFC 7208 §12,
 * redirect=/exp= twice, c/r/t macros outside explanation text).
 */
int		 chk_spf_record_check(const char *txt, size_t len, char *why,
		    size_t whylen);

/* Evaluation flags for chk_spf_map_result. */
#define CHK_SPF_F_LIMIT		0x01	/* too many DNS-querying terms */
#define CHK_SPF_F_VOID		0x02	/* too many void lookups */
#define CHK_SPF_F_BUDGET	0x04	/* time budget exceeded */
#define CHK_SPF_F_MX		0x08	/* an MX answer with over 10 names */

/*
 * chk_spf_map_result - libspf2's result (SPF_result_t) and error code
 * (SPF_errcode_t) plus our evaluation flags to the RFC 7208 result:
 * limits and MX -> permerror, budget -> temperror, INVALID with a DNS error ->
 * temperror, other INVALID (record did not compile) -> permerror.
 */
enum chk_res	 chk_spf_map_result(int spf_result, int spf_err,
		    unsigned flags);

/* chk_spf_res_suffix - "PASS", "FAIL", ... for symbol names. */
const char	*chk_spf_res_suffix(enum chk_res r);

#endif
