/*
 * spf.c - SPF (RFC 7208) through libspf2, with our own libspf2 DNS layer.
 *
 * Called by the engine: chk_spf_new() at start-up or reload, then
 * chk_spf_helo() / chk_spf_mailfrom() per transaction; chk_spf_check()
 * is the evaluation itself (also used by tests and conformance drivers).
 *
 * How libspf2 is driven, and why:
 *   - The SPF_server_t gets a custom SPF_dns_server_t (spf_dns_lookup,
 *     spf_dns_get_spf) so every SPF query goes through dns_query() and its
 *     shared cache.
 *   - We do not call SPF_request_query_mailfrom(): it answers "pass" for
 *     every loopback client before looking at any record. spf_evaluate()
 *     does what it does minus that shortcut (fetch the record through the
 *     DNS layer, SPF_record_interpret()); the loopback test lives only
 *     there in libspf2 1.2.10.
 *   - spf_dns_get_spf() selects the record itself (TXT only, exactly one
 *     "v=spf1"), runs the RFC 7208 validator on it (chk_spf_record_check,
 *     spf_record.c), rewrites it for libspf2 (chk_spfrec_rewrite) and
 *     then compiles it, setting the result (none / temperror /
 *     permerror) that libspf2's own code would leave as "invalid".
 *   - a/mx with CIDR length 0 for the client's family are rewritten to a
 *     name with CHK_SPFREC_ANY_SUFFIX: the DNS layer strips it, queries
 *     the real name and answers any address with the client's own.
 *   - MX answers over 10 names -> permerror (flag); a DNS error on the
 *     address of a PTR name -> that name is skipped; exp= text that is
 *     not valid explanation text -> not given to libspf2 (default).
 *   - libspf2 counts DNS mechanisms per record (an include starts again
 *     at 0) and has no void-lookup limit, so the DNS layer counts them per
 *     evaluation: every query that is not an address lookup of a name the
 *     preceding MX/PTR answer listed, not a %{p} lookup and not an exp=
 *     TXT is one DNS-querying term; an include/redirect is counted when
 *     its record is fetched. Past a limit, or past the time budget, the
 *     layer answers TRY_AGAIN so libspf2 stops at once, and the flag turns
 *     the result into permerror (limits) or temperror (budget).
 *
 * Per-evaluation state (struct spf_eval) lives on the evaluating thread's
 * stack; the DNS layer finds it through a thread-local pointer, because
 * libspf2's DNS callbacks receive no request context. libspf2 is
 * synchronous, so the callbacks run on that same thread.
 *
 * Owns: the SPF_server_t and the DNS layer struct; not the struct dns.
 * Thread safety: chk_spf_check() may run on many threads at once on one
 * struct chk_spf (the SPF_server_t is only read during an evaluation).
 * chk_spf_new() sets libspf2's process-wide log handlers.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "dns.h"
#include "helo.h"
#include "iprev.h"
#include "log.h"
#include "spf.h"
#include "spf_record.h"
#include "txn.h"
#include "util.h"

#define SPF_PENDING_MAX	10	/* RFC 7208 §4.6.4: 10 MX / PTR names */

/* Our default explanation (RFC 7208 §6.2), in macro-string form. */
#define SPF_OUR_EXP	"%{i}%_is%_not%_a%_permitted%_sender%_for%_%{d}"

struct chk_spf {
	struct dns		*dns;
	SPF_server_t		*server;
	SPF_dns_server_t	 layer;		/* hook = this struct */
	int			 budget_ms;
	int			 max_dns_mech;
	int			 max_void;
};

/* The state of one evaluation (on the evaluating thread's stack). */
struct spf_eval {
	const struct chk_spf	*s;
	long long		 deadline_us;
	int			 nterms;	/* DNS-querying terms so far */
	int			 nvoid;		/* void lookups so far */
	int			 nrecords;	/* get_spf calls so far */
	unsigned		 flags;		/* CHK_SPF_F_* */
	char			*pending[SPF_PENDING_MAX]; /* MX/PTR names */
	size_t			 npending;
	size_t			 cursor;	/* next expected pending name */
	int			 pending_ptr;	/* the pending names are PTR's */
	int			 any;		/* a record used CHK_SPFREC_ANY_SUFFIX */
	int			 family;	/* client: 4 or 6 */
	unsigned char		 client[16];	/* client address (4 or 16) */
	char			 dnserr[300];	/* first DNS failure, for reason */
	char			 why[400];	/* first record error, for reason */
};

static _Thread_local struct spf_eval *spf_cur;

/* ------------------------------------------------------ pure helpers */

int
chk_spf_domain_ok(const char *domain)
{
	const char *dot;

	/* RFC 7208 §4.3: an address literal or a name with spaces is not
	 * a domain to query: "none" without a lookup. */
	if (domain == NULL || !dns_valid_name(domain) || domain[0] == '[' ||
	    strchr(domain, ' ') != NULL)
		return 0;
	dot = strchr(domain, '.');
	return dot != NULL && dot[1] != '\0';
}

int
chk_spf_is_record(const char *txt, size_t len)
{
	static const char v[] = "v=spf1";

	if (txt == NULL || len < sizeof(v) - 1 ||
	    strncasecmp(txt, v, sizeof(v) - 1) != 0)
		return 0;
	return len == sizeof(v) - 1 || txt[sizeof(v) - 1] == ' ';
}

int
chk_spf_record_check(const char *txt, size_t len, char *why, size_t whylen)
{
	return chk_spfrec_validate(txt, len, why, whylen);
}

enum chk_res
chk_spf_map_result(int spf_result, int spf_err, unsigned flags)
{
	if (flags & (CHK_SPF_F_LIMIT | CHK_SPF_F_VOID | CHK_SPF_F_MX))
		return CHK_PERMERROR;
	if (flags & CHK_SPF_F_BUDGET)
		return CHK_TEMPERROR;
	switch (spf_result) {
	case SPF_RESULT_PASS:		return CHK_PASS;
	case SPF_RESULT_FAIL:		return CHK_FAIL;
	case SPF_RESULT_SOFTFAIL:	return CHK_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:	return CHK_NEUTRAL;
	case SPF_RESULT_NONE:		return CHK_NONE;
	case SPF_RESULT_TEMPERROR:	return CHK_TEMPERROR;
	case SPF_RESULT_PERMERROR:	return CHK_PERMERROR;
	default:
		break;
	}
	return spf_err == SPF_E_DNS_ERROR ? CHK_TEMPERROR : CHK_PERMERROR;
}

const char *
chk_spf_res_suffix(enum chk_res r)
{
	switch (r) {
	case CHK_PASS:		return "PASS";
	case CHK_FAIL:		return "FAIL";
	case CHK_SOFTFAIL:	return "SOFTFAIL";
	case CHK_NEUTRAL:	return "NEUTRAL";
	case CHK_TEMPERROR:	return "TEMPERROR";
	case CHK_PERMERROR:	return "PERMERROR";
	case CHK_NONE:
	case CHK_POLICY:
		break;
	}
	return "NONE";
}

/* ---------------------------------------------------- evaluation state */

static long long
spf_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
spf_pending_clear(struct spf_eval *ev)
{
	for (size_t i = 0; i < ev->npending; i++)
		free(ev->pending[i]);
	ev->npending = 0;
	ev->cursor = 0;
}

/* spf_eval_term - account one DNS-querying term. 0, or -1 past the limit
 * (the flag is set). */
static int
spf_eval_term(struct spf_eval *ev)
{
	spf_pending_clear(ev);
	if (++ev->nterms > ev->s->max_dns_mech) {
		ev->flags |= CHK_SPF_F_LIMIT;
		return -1;
	}
	return 0;
}

/* spf_eval_budget - 0, or -1 once the time budget is spent. */
static int
spf_eval_budget(struct spf_eval *ev)
{
	if (spf_now_us() <= ev->deadline_us)
		return 0;
	ev->flags |= CHK_SPF_F_BUDGET;
	return -1;
}

/*
 * spf_eval_admit - account a lookup before it is sent. Sets *term when
 * it is a DNS-querying term (its void answer counts), *ptrname when it
 * is the address lookup of a name a PTR answer gave. 0 to go on, -1 to
 * refuse it (a limit or the budget is exhausted).
 */
static int
spf_eval_admit(struct spf_eval *ev, const char *domain, ns_type type,
    int should_cache, int *term, int *ptrname)
{
	*term = 0;
	*ptrname = 0;
	if (spf_eval_budget(ev) != 0)
		return -1;
	if (type == ns_t_a || type == ns_t_aaaa) {
		if (ev->cursor < ev->npending &&
		    strcasecmp(ev->pending[ev->cursor], domain) == 0) {
			ev->cursor++;	/* address of an MX or PTR name */
			*ptrname = ev->pending_ptr;
			return 0;
		}
	} else if (type == ns_t_txt || (type == ns_t_ptr && !should_cache)) {
		return 0;		/* exp= text, or the %{p} macro */
	}
	*term = 1;
	return spf_eval_term(ev);
}

/* spf_eval_void - count a void answer of a term; -1 past the limit. */
static int
spf_eval_void(struct spf_eval *ev)
{
	if (++ev->nvoid > ev->s->max_void) {
		ev->flags |= CHK_SPF_F_VOID;
		return -1;
	}
	return 0;
}

static void
spf_eval_dnserr(struct spf_eval *ev, const char *domain, const char *type,
    enum dns_status st)
{
	if (ev != NULL && ev->dnserr[0] == '\0')
		(void)str_fmt(ev->dnserr, sizeof(ev->dnserr), "DNS %s for %s %s",
		    dns_status_name(st), domain, type);
}

/* ------------------------------------------------------ the DNS layer */

static SPF_dns_stat_t
spf_herrno(enum dns_status st)
{
	switch (st) {
	case DNS_OK:		return NETDB_SUCCESS;
	case DNS_NODATA:	return NO_DATA;
	case DNS_NXDOMAIN:
	case DNS_BADNAME:	return HOST_NOT_FOUND;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
	case DNS_MALFORMED:
		break;
	}
	return TRY_AGAIN;
}

static const char *
spf_type_name(ns_type type)
{
	switch ((int)type) {
	case ns_t_a:	return "A";
	case ns_t_aaaa:	return "AAAA";
	case ns_t_mx:	return "MX";
	case ns_t_ptr:	return "PTR";
	case ns_t_txt:	return "TXT";
	default:	return "?";
	}
}

static SPF_dns_rr_t *
spf_rr_new(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int ttl, SPF_dns_stat_t herrno)
{
	SPF_dns_rr_t *rr = SPF_dns_rr_new_init(layer, domain, type, ttl, herrno);

	if (rr == NULL)
		PANIC("out of memory in an SPF DNS answer");
	return rr;
}

/* spf_rr_put - append one record of len octets to rr. */
static void
spf_rr_put(SPF_dns_rr_t *rr, const void *data, size_t len)
{
	if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, len) != SPF_E_SUCCESS)
		PANIC("out of memory in an SPF DNS answer");
	memcpy(rr->rr[rr->num_rr], data, len);
	rr->num_rr++;
}

/* spf_exp_escape - an exp= TXT as libspf2 can expand it: its macro parser
 * mishandles literal spaces, so they become the "%_" macro. */
static char *
spf_exp_escape(const char *txt, size_t len)
{
	char *out = xmalloc(len * 2 + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (txt[i] == ' ') {
			*o++ = '%';
			*o++ = '_';
		} else {
			*o++ = txt[i];
		}
	}
	*o = '\0';
	return out;
}

/* spf_pending_set - remember the names of an MX or PTR answer: the
 * address lookups of these names that follow are part of that term. */
static void
spf_pending_set(struct spf_eval *ev, const SPF_dns_rr_t *rr)
{
	spf_pending_clear(ev);
	ev->pending_ptr = rr->rr_type == ns_t_ptr;
	for (int i = 0; i < rr->num_rr && ev->npending < SPF_PENDING_MAX; i++)
		ev->pending[ev->npending++] = xstrdup(rr->rr[i]->mx);
}

/* spf_rr_fill - copy the records of res into rr in libspf2's form. PTR
 * answers are cut to 10 names (RFC 7208 §4.6.4); null MX targets are
 * dropped, the others get mx_suffix appended (NULL: none); an exp= TXT
 * is used only when there is exactly one and it is valid explanation
 * text (RFC 7208 §6.2: else the default explanation). */
static void
spf_rr_fill(SPF_dns_rr_t *rr, ns_type type, const struct dns_result *res,
    const char *mx_suffix)
{
	for (size_t i = 0; i < res->count; i++) {
		const struct dns_rr *r = &res->rr[i];
		unsigned char a[16];

		if (r->type != (uint16_t)type || r->text == NULL)
			continue;
		switch ((int)type) {
		case ns_t_a:
			if (inet_pton(AF_INET, r->text, a) == 1)
				spf_rr_put(rr, a, 4);
			break;
		case ns_t_aaaa:
			if (inet_pton(AF_INET6, r->text, a) == 1)
				spf_rr_put(rr, a, 16);
			break;
		case ns_t_ptr:
			if (rr->num_rr < SPF_PENDING_MAX && r->text[0] != '\0')
				spf_rr_put(rr, r->text, strlen(r->text) + 1);
			break;
		case ns_t_mx:
			if (r->text[0] != '\0' && mx_suffix != NULL) {
				char *n = xasprintf("%s%s", r->text, mx_suffix);

				spf_rr_put(rr, n, strlen(n) + 1);
				free(n);
			} else if (r->text[0] != '\0')
				spf_rr_put(rr, r->text, strlen(r->text) + 1);
			break;
		case ns_t_txt:
			if (res->count == 1 && strlen(r->text) == r->textlen &&
			    chk_spfrec_exp_ok(r->text, r->textlen)) {
				char *e = spf_exp_escape(r->text, r->textlen);

				spf_rr_put(rr, e, strlen(e) + 1);
				free(e);
			}
			break;
		default:
			break;
		}
	}
	if (rr->num_rr == 0 && rr->herrno == NETDB_SUCCESS)
		rr->herrno = NO_DATA;
}

/* spf_truncate - RFC 7208 §7.3: a name longer than 253 octets loses
 * labels on the left until it fits. */
static const char *
spf_truncate(const char *domain)
{
	const char *dot;

	while (strlen(domain) > 253 && (dot = strchr(domain, '.')) != NULL)
		domain = dot + 1;
	return domain;
}

/* spf_any_name - if domain carries CHK_SPFREC_ANY_SUFFIX (a CIDR length
 * 0 the rewrite replaced), the real name into buf and 1; else 0. */
static int
spf_any_name(const struct spf_eval *ev, const char *domain, char *buf,
    size_t buflen)
{
	size_t dl = strlen(domain), sl = strlen(CHK_SPFREC_ANY_SUFFIX);

	if (ev == NULL || !ev->any || dl <= sl ||
	    strcasecmp(domain + dl - sl, CHK_SPFREC_ANY_SUFFIX) != 0 ||
	    dl - sl >= buflen)
		return 0;
	memcpy(buf, domain, dl - sl);
	buf[dl - sl] = '\0';
	return 1;
}

/* spf_rr_any - the answer for a name whose CIDR length is 0: if it has
 * any address of the client's family, the client's own address. */
static void
spf_rr_any(SPF_dns_rr_t *rr, ns_type type, const struct spf_eval *ev,
    const struct dns_result *res)
{
	int want = type == ns_t_a ? 4 : 16;

	if (res->count > 0 && (ev->family == 4 ? 4 : 16) == want)
		spf_rr_put(rr, ev->client, (size_t)want);
	if (rr->num_rr == 0 && rr->herrno == NETDB_SUCCESS)
		rr->herrno = NO_DATA;
}

/* spf_mx_over - an MX answer naming more than 10 hosts: RFC 7208 §4.6.4
 * makes the evaluation a permerror. */
static int
spf_mx_over(struct spf_eval *ev, const struct dns_result *res)
{
	size_t n = 0;

	for (size_t i = 0; i < res->count; i++)
		if (res->rr[i].type == DNS_T_MX && res->rr[i].text != NULL &&
		    res->rr[i].text[0] != '\0')
			n++;
	if (n <= SPF_PENDING_MAX)
		return 0;
	ev->flags |= CHK_SPF_F_MX;
	return 1;
}

/* spf_dns_lookup - libspf2's lookup callback: dns_query() plus the
 * per-evaluation accounting. Never returns NULL. */
static SPF_dns_rr_t *
spf_dns_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	const struct chk_spf *s = layer->hook;
	struct spf_eval *ev = spf_cur;
	struct dns_result res;
	SPF_dns_rr_t *rr;
	char real[300];
	const char *qname;
	int term = 0, ptrname = 0, any;

	if (domain == NULL || *domain == '\0' || type == ns_t_spf)
		return spf_rr_new(layer, domain, type, 0,
		    type == ns_t_spf ? NO_DATA : HOST_NOT_FOUND);
	domain = spf_truncate(domain);
	any = spf_any_name(ev, domain, real, sizeof(real));
	qname = any ? real : domain;
	if (ev != NULL &&
	    spf_eval_admit(ev, domain, type, should_cache, &term,
	    &ptrname) != 0)
		return spf_rr_new(layer, domain, type, 0, TRY_AGAIN);
	dns_query(s->dns, qname, (uint16_t)type, &res);
	if (ev != NULL && ((term && (res.status == DNS_NXDOMAIN ||
	    res.status == DNS_NODATA) && spf_eval_void(ev) != 0) ||
	    (type == ns_t_mx && spf_mx_over(ev, &res)))) {
		dns_result_free(&res);
		return spf_rr_new(layer, domain, type, 0, TRY_AGAIN);
	}
	if (ptrname && spf_herrno(res.status) == TRY_AGAIN) {
		/* RFC 7208 §5.5: a DNS error on the address lookup of a
		 * PTR name skips that name */
		dns_result_free(&res);
		return spf_rr_new(layer, domain, type, 0, HOST_NOT_FOUND);
	}
	if (spf_herrno(res.status) == TRY_AGAIN)
		spf_eval_dnserr(ev, qname, spf_type_name(type), res.status);
	rr = spf_rr_new(layer, domain, type,
	    res.count > 0 ? (int)res.rr[0].ttl : 0, spf_herrno(res.status));
	if (res.status == DNS_OK && any &&
	    (type == ns_t_a || type == ns_t_aaaa))
		spf_rr_any(rr, type, ev, &res);
	else if (res.status == DNS_OK)
		spf_rr_fill(rr, type, &res, any ? CHK_SPFREC_ANY_SUFFIX : NULL);
	if (ev != NULL && (type == ns_t_mx || type == ns_t_ptr))
		spf_pending_set(ev, rr);
	dns_result_free(&res);
	return rr;
}

/* spf_get_fail - the record could not be had: set the result libspf2
 * should see, and return err. A permerror's message is kept for the
 * reason. */
static SPF_errcode_t
spf_get_fail(SPF_response_t *resp, SPF_result_t result, SPF_errcode_t err,
    const char *msg)
{
	if (spf_cur != NULL && result == SPF_RESULT_PERMERROR &&
	    spf_cur->why[0] == '\0')
		(void)str_copy(spf_cur->why, msg, sizeof(spf_cur->why));
	resp->result = result;
	resp->reason = SPF_REASON_FAILURE;
	return SPF_response_add_error(resp, err, "%s", msg);
}

/* spf_select - the one "v=spf1" TXT of res: 1 and *rec, or 0 (none) or
 * 2 (several). */
static int
spf_select(const struct dns_result *res, const struct dns_rr **rec)
{
	int n = 0;

	for (size_t i = 0; i < res->count; i++) {
		const struct dns_rr *r = &res->rr[i];

		if (r->type == DNS_T_TXT && r->text != NULL &&
		    chk_spf_is_record(r->text, r->textlen)) {
			*rec = r;
			n++;
		}
	}
	return n > 1 ? 2 : n;
}

/*
 * spf_dns_get_spf - libspf2's record callback (top level, include,
 * redirect): TXT through dns_query(), selection, our record check, then
 * SPF_record_compile(). On failure resp->result says none, temperror or
 * permerror and the return is SPF_E_DNS_ERROR only for DNS failures (so
 * that an include turns it into temperror, everything else permerror).
 */
static SPF_errcode_t
spf_dns_get_spf(SPF_server_t *server, SPF_request_t *req,
    SPF_response_t *resp, SPF_record_t **recp)
{
	const struct chk_spf *s = server->resolver->hook;
	struct spf_eval *ev = spf_cur;
	const char *domain = spf_truncate(req->cur_dom);
	const struct dns_rr *rec = NULL;
	struct dns_result res;
	char msg[400], *text;
	SPF_errcode_t err;
	size_t mlen;
	int n, any;

	*recp = NULL;
	if (ev != NULL && (spf_eval_budget(ev) != 0 ||
	    (ev->nrecords++ > 0 && spf_eval_term(ev) != 0))) {
		(void)str_fmt(msg, sizeof(msg), "limit reached at '%s'", domain);
		return spf_get_fail(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
		    msg);
	}
	dns_query(s->dns, domain, DNS_T_TXT, &res);
	if (res.status != DNS_OK) {
		SPF_result_t r = SPF_RESULT_NONE;

		err = SPF_E_NOT_SPF;
		if (spf_herrno(res.status) == TRY_AGAIN) {
			spf_eval_dnserr(ev, domain, "TXT", res.status);
			r = SPF_RESULT_TEMPERROR;
			err = SPF_E_DNS_ERROR;
		}
		(void)str_fmt(msg, sizeof(msg), "TXT '%s': %s", domain,
		    dns_status_name(res.status));
		dns_result_free(&res);
		return spf_get_fail(resp, r, err, msg);
	}
	n = spf_select(&res, &rec);
	if (n != 1) {
		(void)str_fmt(msg, sizeof(msg), "%s SPF record for '%s'",
		    n == 0 ? "no" : "more than one", domain);
		dns_result_free(&res);
		return spf_get_fail(resp, n == 0 ? SPF_RESULT_NONE :
		    SPF_RESULT_PERMERROR, n == 0 ? SPF_E_NOT_SPF :
		    SPF_E_MULTIPLE_RECORDS, msg);
	}
	(void)str_fmt(msg, sizeof(msg), "SPF record of '%s': ", domain);
	mlen = strlen(msg);
	if (chk_spf_record_check(rec->text, rec->textlen, msg + mlen,
	    sizeof(msg) - mlen) != 0) {
		dns_result_free(&res);
		return spf_get_fail(resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX,
		    msg);
	}
	text = chk_spfrec_rewrite(rec->text, rec->textlen,
	    req->client_ver == AF_INET6 ? 6 : 4, &any);
	if (ev != NULL && any)
		ev->any = 1;
	err = SPF_record_compile(server, resp, recp, text);
	free(text);
	dns_result_free(&res);
	if (err != SPF_E_SUCCESS) {
		if (*recp != NULL)
			SPF_record_free(*recp);
		*recp = NULL;
		(void)str_fmt(msg, sizeof(msg), "SPF record of '%s': %s",
		    domain, SPF_strerror(err));
		return spf_get_fail(resp, SPF_RESULT_PERMERROR,
		    err == SPF_E_DNS_ERROR ? SPF_E_SYNTAX : err, msg);
	}
	return SPF_E_SUCCESS;
}

/* ------------------------------------------------------- evaluation */

/* spf_reason - a short human comment for the trace and
 * Authentication-Results: ours when a limit decided, else libspf2's
 * header comment without its "receiver: " prefix. */
static void
spf_reason(const struct chk_spf *s, const struct spf_eval *ev,
    SPF_response_t *resp, enum chk_res r, char *out, size_t outlen)
{
	const char *c = SPF_response_get_header_comment(resp);
	const char *rec = s->server->rec_dom;
	size_t rl = rec != NULL ? strlen(rec) : 0;

	if (ev->flags & CHK_SPF_F_MX)
		(void)str_fmt(out, outlen, "an MX answer names more than %d "
		    "hosts", SPF_PENDING_MAX);
	else if (ev->flags & CHK_SPF_F_LIMIT)
		(void)str_fmt(out, outlen, "more than %d DNS-querying terms",
		    s->max_dns_mech);
	else if (ev->flags & CHK_SPF_F_VOID)
		(void)str_fmt(out, outlen, "more than %d void lookups",
		    s->max_void);
	else if (ev->flags & CHK_SPF_F_BUDGET)
		(void)str_fmt(out, outlen, "time budget of %d ms exceeded",
		    s->budget_ms);
	else if (r == CHK_TEMPERROR && ev->dnserr[0] != '\0')
		(void)str_copy(out, ev->dnserr, outlen);
	else if (r == CHK_PERMERROR && ev->why[0] != '\0')
		(void)str_copy(out, ev->why, outlen);
	else if (c != NULL) {
		if (rl > 0 && strncmp(c, rec, rl) == 0 && strncmp(c + rl, ": ",
		    2) == 0)
			c += rl + 2;
		(void)str_copy(out, c, outlen);
	} else
		(void)str_copy(out, chk_spf_res_suffix(r), outlen);
}

/* spf_request - a libspf2 request for ip/helo/sender; NULL if the
 * client address is not an address. */
static SPF_request_t *
spf_request(const struct chk_spf *s, const char *ip, const char *helo,
    const char *sender, int helo_identity)
{
	unsigned char a[16];
	SPF_request_t *req;
	int alen = chk_iprev_ip_parse(ip, a);

	if (alen == 0)
		return NULL;
	req = SPF_request_new(s->server);
	if (req == NULL)
		PANIC("out of memory in SPF_request_new");
	if (alen == 4) {
		struct in_addr in;

		memcpy(&in, a, 4);
		SPF_request_set_ipv4(req, in);
	} else {
		struct in6_addr in6;

		memcpy(&in6, a, 16);
		SPF_request_set_ipv6(req, in6);
	}
	/* %{h} of a MAIL FROM check without HELO would be a permerror. */
	if (SPF_request_set_helo_dom(req, helo != NULL && *helo != '\0' ?
	    helo : "unknown") != SPF_E_SUCCESS ||
	    SPF_request_set_env_from(req, sender) != SPF_E_SUCCESS)
		PANIC("out of memory in an SPF request");
	req->use_helo = helo_identity ? 1 : 0;
	req->cur_dom = helo_identity ? req->helo_dom : req->env_from_dp;
	return req;
}

enum chk_res
chk_spf_check(struct chk_spf *s, const char *ip, const char *helo,
    const char *sender, int helo_identity, char *reason, size_t reasonlen)
{
	return chk_spf_eval(s, ip, helo, sender, helo_identity, reason,
	    reasonlen, NULL, 0);
}

enum chk_res
chk_spf_eval(struct chk_spf *s, const char *ip, const char *helo,
    const char *sender, int helo_identity, char *reason, size_t reasonlen,
    char *exp, size_t explen)
{
	struct spf_eval ev;
	SPF_request_t *req;
	SPF_response_t *resp;
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;
	const char *domain, *at;
	enum chk_res r;

	if (exp != NULL && explen > 0)
		exp[0] = '\0';
	at = sender != NULL ? strrchr(sender, '@') : NULL;
	domain = helo_identity ? helo : at != NULL ? at + 1 : sender;
	if (sender == NULL || !chk_spf_domain_ok(domain)) {
		(void)str_copy(reason, "malformed or single-label domain",
		    reasonlen);
		return CHK_NONE;
	}
	if ((req = spf_request(s, ip, helo, sender, helo_identity)) == NULL) {
		(void)str_copy(reason, "no valid client address", reasonlen);
		return CHK_NONE;
	}
	memset(&ev, 0, sizeof(ev));
	ev.s = s;
	if (req->client_ver == AF_INET6) {
		ev.family = 6;
		memcpy(ev.client, &req->ipv6, 16);
	} else {
		ev.family = 4;
		memcpy(ev.client, &req->ipv4, 4);
	}
	ev.deadline_us = spf_now_us() + (long long)s->budget_ms * 1000;
	spf_cur = &ev;
	if ((resp = SPF_response_new(req)) == NULL)
		PANIC("out of memory in SPF_response_new");
	err = SPF_server_get_record(s->server, req, resp, &rec);
	if (err == SPF_E_SUCCESS) {
		resp->spf_record_exp = rec;
		err = SPF_record_interpret(rec, req, resp, 0);
		SPF_record_free(rec);
		resp->spf_record_exp = NULL;
	} else {
		if (rec != NULL)
			SPF_record_free(rec);
		if (resp->result != SPF_RESULT_NONE &&
		    resp->result != SPF_RESULT_TEMPERROR)
			resp->result = SPF_RESULT_PERMERROR;
		SPF_i_done(resp, resp->result, resp->reason, err);
	}
	spf_cur = NULL;
	r = chk_spf_map_result(resp->result, resp->err, ev.flags);
	spf_reason(s, &ev, resp, r, reason, reasonlen);
	if (exp != NULL && explen > 0)
		(void)str_copy(exp, r == CHK_FAIL &&
		    SPF_response_get_explanation(resp) != NULL ?
		    SPF_response_get_explanation(resp) : "", explen);
	log_debug("spf %s ip=%s sender=%s: %s (%s)", helo_identity ? "helo" :
	    "mailfrom", ip, sender, chk_spf_res_suffix(r), reason);
	spf_pending_clear(&ev);
	SPF_response_free(resp);
	SPF_request_free(req);
	return r;
}

/* spf_store - replace the contents of a txn_spf (strings copied). */
static void
spf_store(struct txn_spf *o, enum chk_res res, const char *domain,
    const char *identity, const char *sender, const char *reason)
{
	free(o->domain);
	free(o->identity);
	free(o->sender);
	free(o->reason);
	o->res = res;
	o->domain = domain != NULL ? xstrdup(domain) : NULL;
	o->identity = identity != NULL ? xstrdup(identity) : NULL;
	o->sender = sender != NULL ? xstrdup(sender) : NULL;
	o->reason = reason != NULL && *reason != '\0' ? xstrdup(reason) : NULL;
}

/* spf_helo_eval - the HELO identity into t->spf_helo; no symbol. */
static void
spf_helo_eval(struct chk_spf *s, struct txn *t)
{
	char reason[512], *sender;
	enum chk_res r;

	if (chk_helo_classify(t->helo, NULL, 0) != CHK_HELO_FQDN) {
		spf_store(&t->spf_helo, CHK_NONE, t->helo, "helo", NULL,
		    "HELO is not a FQDN");
		return;
	}
	sender = xasprintf("postmaster@%s", t->helo);
	r = chk_spf_check(s, t->client_ip, t->helo, sender, 1, reason,
	    sizeof(reason));
	spf_store(&t->spf_helo, r, t->helo, "helo", sender, reason);
	free(sender);
}

void
chk_spf_helo(struct chk_spf *s, struct txn *t)
{
	char sym[32];

	spf_helo_eval(s, t);
	switch (t->spf_helo.res) {
	case CHK_PASS:
	case CHK_FAIL:
	case CHK_SOFTFAIL:
		(void)str_fmt(sym, sizeof(sym), "HELO_SPF_%s",
		    chk_spf_res_suffix(t->spf_helo.res));
		txn_symbol(t, sym, t->spf_helo.reason);
		break;
	default:
		break;
	}
}

void
chk_spf_mailfrom(struct chk_spf *s, struct txn *t)
{
	char reason[512], sym[32];
	enum chk_res r;

	if (t->mail_from == NULL || t->mail_from[0] == '\0') {
		/* Null sender: the HELO identity is the one that counts. An
		 * address literal or malformed sender is not the null sender:
		 * it keeps the mailfrom identity (and gets "none"). */
		if (t->spf_helo.identity == NULL)
			spf_helo_eval(s, t);
		spf_store(&t->spf, t->spf_helo.res, t->spf_helo.domain, "helo",
		    t->spf_helo.sender, t->spf_helo.reason);
	} else {
		r = chk_spf_check(s, t->client_ip, t->helo, t->mail_from, 0,
		    reason, sizeof(reason));
		spf_store(&t->spf, r, t->mail_domain, "mailfrom", t->mail_from,
		    reason);
	}
	(void)str_fmt(sym, sizeof(sym), "SPF_%s", chk_spf_res_suffix(t->spf.res));
	txn_symbol(t, sym, t->spf.reason);
}

/* ------------------------------------------------------ set-up */

static void
spf_log_warning(const char *file, int line, const char *msg)
{
	log_debug("libspf2 %s:%d: %s", file, line, msg);
}

static void
spf_log_quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

struct chk_spf *
chk_spf_new(struct dns *d, const char *receiving_host, char *err,
    size_t errlen)
{
	struct chk_spf *s;
	SPF_response_t *resp = NULL;

	if (d == NULL) {
		(void)str_copy(err, "no resolver", errlen);
		return NULL;
	}
	/* Process-wide; libspf2 warns on stderr by default. */
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = spf_log_quiet;
	SPF_debug_handler = spf_log_quiet;

	s = xcalloc(1, sizeof(*s));
	s->dns = d;
	s->budget_ms = CHK_SPF_BUDGET_MS;
	s->max_dns_mech = CHK_SPF_MAX_DNS_MECH;
	s->max_void = CHK_SPF_MAX_VOID;
	s->layer.destroy = NULL;
	s->layer.lookup = spf_dns_lookup;
	s->layer.get_spf = spf_dns_get_spf;
	s->layer.get_exp = NULL;
	s->layer.add_cache = NULL;
	s->layer.layer_below = NULL;
	s->layer.name = "mxwarden";
	s->layer.hook = s;
	s->server = SPF_server_new_dns(&s->layer, 0);
	if (s->server == NULL) {
		(void)str_copy(err, "SPF_server_new_dns failed", errlen);
		free(s);
		return NULL;
	}
	/* libspf2 itself allows more; ours are enforced in the DNS layer. */
	SPF_server_set_max_dns_mech(s->server, CHK_SPF_MAX_DNS_MECH);
	if ((receiving_host != NULL &&
	    SPF_server_set_rec_dom(s->server, receiving_host) != SPF_E_SUCCESS) ||
	    SPF_server_set_explanation(s->server, SPF_OUR_EXP, &resp) !=
	    SPF_E_SUCCESS) {
		(void)str_copy(err, "cannot set the SPF receiver or explanation",
		    errlen);
		if (resp != NULL)
			SPF_response_free(resp);
		chk_spf_free(s);
		return NULL;
	}
	if (resp != NULL)
		SPF_response_free(resp);
	return s;
}

void
chk_spf_set_limits(struct chk_spf *s, int budget_ms, int max_dns_mech,
    int max_void)
{
	if (budget_ms > 0)
		s->budget_ms = budget_ms;
	if (max_dns_mech > 0)
		s->max_dns_mech = max_dns_mech;
	if (max_void > 0)
		s->max_void = max_void;
}

void
chk_spf_free(struct chk_spf *s)
{
	if (s == NULL)
		return;
	SPF_server_free(s->server);
	free(s);
}
