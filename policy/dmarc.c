/*
 * dmarc.c - DMARC evaluation (RFC 7489) for the engine's end of message.
 *
 * Called by the engine after SPF and DKIM (chk_dmarc_run). Owns the
 * public suffix list reference (psl.c) and nothing per message: results
 * go into t->from_domain, t->dmarc and a symbol.
 *
 * Division of work with libopendmarc:
 *  - policy discovery is ours (chk_dmarc_discover) and uses our resolver;
 *    libopendmarc never does DNS;
 *  - the record found is handed to libopendmarc
 *    (opendmarc_policy_store_dmarc), which parses it; p, sp, adkim,
 *    aspf and pct are read back with its fetch functions;
 *  - alignment, sp/p selection and pct sampling are computed here, for
 *    reasons checked against RFC 7489 and libopendmarc 1.4.2's source:
 *    its store function overwrites the From domain with the domain where
 *    the record was found, so relaxed/strict alignment would be judged
 *    against the organizational domain after a fallback (§3.1 compares
 *    with the RFC5322.From domain); it keeps a single DKIM domain per
 *    message (we have up to CHK_DKIM_MAX_SIGS passing signatures, and
 *    any aligned one passes, §4.2); its relaxed test uses a process-wide
 *    suffix table; and it never applies pct= (§6.6.4).
 *  - SPF comes only from t->spf (our own check); never from headers.
 *
 * Thread safety: the struct is read-only after chk_dmarc_new(); each
 * call makes its own libopendmarc policy context.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <opendmarc/dmarc.h>

#include "addr.h"
#include "buf.h"
#include "dmarc.h"
#include "dns.h"
#include "log.h"
#include "psl.h"
#include "util.h"

struct chk_dmarc {
	struct dns	*dns;
	struct psl	*psl;
};

struct chk_dmarc *
chk_dmarc_new(struct dns *d, const char *psl_path, char *err, size_t errlen)
{
	struct chk_dmarc *c = xcalloc(1, sizeof(*c));

	c->dns = d;
	c->psl = psl_open(psl_path, err, errlen);
	if (c->psl == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
chk_dmarc_free(struct chk_dmarc *c)
{
	if (c == NULL)
		return;
	psl_close(c->psl);
	free(c);
}

/* dmarc_is_v1 - the record starts with "v" *WSP "=" *WSP "DMARC1" and
 * then ends, or goes on with WSP or ";" (RFC 7489 §6.4). */
static int
dmarc_is_v1(const char *r)
{
	while (*r == ' ' || *r == '\t')
		r++;
	if (*r != 'v' && *r != 'V')
		return 0;
	for (r++; *r == ' ' || *r == '\t'; r++)
		;
	if (*r++ != '=')
		return 0;
	while (*r == ' ' || *r == '\t')
		r++;
	if (strncmp(r, "DMARC1", 6) != 0)
		return 0;
	r += 6;
	return *r == '\0' || *r == ';' || *r == ' ' || *r == '\t';
}

/* dmarc_lookup - the one DMARC record at _dmarc.DOMAIN. */
static enum chk_dmarc_disc
dmarc_lookup(struct chk_dmarc *c, const char *domain, char **record)
{
	struct dns_result res;
	char name[300];
	enum chk_dmarc_disc r = CHK_DMARC_NORECORD;
	size_t i, found = 0, which = 0;

	if (str_fmt(name, sizeof(name), "_dmarc.%s", domain) < 0 ||
	    !dns_valid_name(name))
		return CHK_DMARC_NORECORD;
	switch (dns_query(c->dns, name, DNS_T_TXT, &res)) {
	case DNS_OK:
		for (i = 0; i < res.count; i++) {
			if (strlen(res.rr[i].text) == res.rr[i].textlen &&
			    dmarc_is_v1(res.rr[i].text)) {
				found++;
				which = i;
			}
		}
		if (found == 1) {
			*record = xstrdup(res.rr[which].text);
			r = CHK_DMARC_FOUND;
		}
		break;
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
	case DNS_MALFORMED:
		r = CHK_DMARC_DNSERROR;
		break;
	case DNS_NODATA:
	case DNS_NXDOMAIN:
	case DNS_BADNAME:
		break;
	}
	dns_result_free(&res);
	return r;
}

/* dmarc_org - the organizational domain of name (a new string). */
static char *
dmarc_org(const struct chk_dmarc *c, const char *name)
{
	char out[256];

	if (psl_org_domain(c->psl, name, out, sizeof(out)) < 0)
		return str_lower(xstrdup(name));
	return xstrdup(out);
}

enum chk_dmarc_disc
chk_dmarc_discover(struct chk_dmarc *c, const char *from_domain,
    char **record, char **record_domain, char **org_domain)
{
	enum chk_dmarc_disc r;

	*record = NULL;
	*record_domain = NULL;
	*org_domain = dmarc_org(c, from_domain);
	r = dmarc_lookup(c, from_domain, record);
	if (r == CHK_DMARC_FOUND) {
		*record_domain = str_lower(xstrdup(from_domain));
		return r;
	}
	if (r == CHK_DMARC_DNSERROR ||
	    strcasecmp(*org_domain, from_domain) == 0)
		return r;
	r = dmarc_lookup(c, *org_domain, record);
	if (r == CHK_DMARC_FOUND)
		*record_domain = xstrdup(*org_domain);
	return r;
}

/*
 * dmarc_clean - the From value with comments removed, quoted strings
 * replaced by "q" (only the domain matters) and line breaks dropped.
 * -1 on unbalanced quotes or comments.
 */
static int
dmarc_clean(const char *v, struct buf *out)
{
	int depth = 0, quote = 0;

	for (; *v != '\0'; v++) {
		if (*v == '\r' || *v == '\n')
			continue;
		if ((quote || depth > 0) && *v == '\\' && v[1] != '\0') {
			v++;
			continue;
		}
		if (quote) {
			if (*v == '"')
				quote = 0;
			continue;
		}
		if (depth > 0) {
			depth += *v == '(' ? 1 : *v == ')' ? -1 : 0;
			continue;
		}
		if (*v == '(') {
			depth = 1;
			(void)buf_puts(out, " ");
		} else if (*v == '"') {
			quote = 1;
			(void)buf_puts(out, "q");
		} else if (buf_append(out, v, 1) < 0) {
			return -1;
		}
	}
	return quote || depth > 0 ? -1 : 0;
}

/* dmarc_addr_domain - the domain of one mailbox ("x <a@b>" or "a@b"). */
static int
dmarc_addr_domain(char *seg, char *out, size_t outlen, const char **why)
{
	char *lt = strchr(seg, '<'), *gt, *at, *d;

	if (lt != NULL) {
		gt = strchr(lt, '>');
		if (gt == NULL) {
			*why = "unbalanced <>";
			return -1;
		}
		*gt = '\0';
		seg = lt + 1;
		if (strrchr(seg, ':') != NULL)		/* source route */
			seg = strrchr(seg, ':') + 1;
	}
	at = strrchr(seg, '@');
	if (at == NULL) {
		*why = "no domain in From";
		return -1;
	}
	d = str_trim(at + 1);
	if (*d != '\0' && d[strlen(d) - 1] == '.')	/* absolute form */
		d[strlen(d) - 1] = '\0';
	if (*d == '[' || !dns_valid_name(d) || !addr_domain_ok(d) ||
	    strchr(d, '.') == NULL) {
		*why = "bad From domain";
		return -1;
	}
	if (str_copy(out, d, outlen) < 0) {
		*why = "bad From domain";
		return -1;
	}
	str_lower(out);
	return 0;
}

int
chk_dmarc_from_domain(const char *value, char *out, size_t outlen,
    const char **why)
{
	struct buf b;
	char *p, *seg;
	int angle = 0, n = 0, rc = -1;

	*why = "no address in From";
	buf_init(&b, 8192);
	if (dmarc_clean(value, &b) < 0 || b.data == NULL) {
		*why = b.data == NULL ? "no address in From" :
		    "unbalanced quotes or comments in From";
		buf_free(&b);
		return -1;
	}
	/* Split into mailboxes at top-level "," and ";"; "name:" opens a
	 * group and is dropped. */
	for (p = seg = b.data; ; p++) {
		if (*p == '<')
			angle = 1;
		else if (*p == '>')
			angle = 0;
		else if (!angle && *p == ':')
			seg = p + 1;
		if (*p != '\0' && (angle || (*p != ',' && *p != ';')))
			continue;
		if (*p == '\0' || !angle) {
			int end = *p == '\0';

			*p = '\0';
			seg = str_trim(seg);
			if (*seg != '\0') {
				if (++n > 1) {
					*why = "multiple addresses in From";
					rc = -1;
					break;
				}
				rc = dmarc_addr_domain(seg, out, outlen, why);
			}
			if (end)
				break;
			seg = p + 1;
		}
	}
	buf_free(&b);
	return n == 0 ? -1 : rc;
}

/* dmarc_aligned - a is aligned with the From domain (RFC 7489 §3.1). */
static int
dmarc_aligned(const struct chk_dmarc *c, const char *a, const char *from,
    int mode)
{
	char *oa, *of;
	int r;

	if (a == NULL || *a == '\0')
		return 0;
	if (strcasecmp(a, from) == 0)
		return 1;
	if (mode == DMARC_RECORD_A_STRICT)
		return 0;
	oa = dmarc_org(c, a);
	of = dmarc_org(c, from);
	r = strcmp(oa, of) == 0;
	free(oa);
	free(of);
	return r;
}

/* dmarc_spf_aligned - the SPF-authenticated identifier is the MAIL FROM
 * domain, or the HELO name for the null sender (RFC 7489 §3.1.2). */
static int
dmarc_spf_aligned(const struct chk_dmarc *c, const struct txn *t,
    const char *from, int mode)
{
	const struct txn_spf *s = &t->spf;
	int null_sender = t->mail_from == NULL || t->mail_from[0] == '\0';

	if (s->res != CHK_PASS || s->identity == NULL)
		return 0;
	if (strcmp(s->identity, "mailfrom") == 0 ? null_sender :
	    !(strcmp(s->identity, "helo") == 0 && null_sender))
		return 0;
	return dmarc_aligned(c, s->domain, from, mode);
}

static const char *
dmarc_pname(int p)
{
	switch (p) {
	case DMARC_RECORD_P_REJECT:	return "reject";
	case DMARC_RECORD_P_QUARANTINE:	return "quarantine";
	default:			return "none";
	}
}

/* dmarc_sampled - pct= sampling: non-zero when the policy applies. */
static int
dmarc_sampled(int pct)
{
	uint32_t v;

	if (pct >= 100)
		return 1;
	if (pct <= 0)
		return 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		return 1;	/* no randomness: apply the policy */
	return (int)(v % 100) < pct;
}

/* dmarc_finish - set the result and the symbol. */
static void
dmarc_finish(struct txn *t, enum chk_res r, const char *sym,
    const char *detail)
{
	t->dmarc.res = r;
	txn_symbol(t, sym, detail);
}

/*
 * dmarc_evaluate - apply a found record. Returns 0, or -1 when
 * libopendmarc cannot parse it (reason in why).
 */
static int
dmarc_evaluate(struct chk_dmarc *c, struct txn *t, const char *record,
    const char *record_domain, const char *org, const char **why)
{
	DMARC_POLICY_T *pctx;
	OPENDMARC_STATUS_T st;
	const char *from = t->dmarc.from_domain, *ip;
	int p = 0, sp = 0, adkim = 0, aspf = 0, pct = 100, want, pass = 0;
	char detail[300];
	size_t i;

	ip = t->client_ip != NULL ? t->client_ip : "0.0.0.0";
	pctx = opendmarc_policy_connect_init((u_char *)(uintptr_t)ip,
	    strchr(ip, ':') != NULL);
	if (pctx == NULL) {
		*why = "libopendmarc: no context";
		return -1;
	}
	st = opendmarc_policy_store_dmarc(pctx, (u_char *)(uintptr_t)record,
	    (u_char *)(uintptr_t)record_domain, (u_char *)(uintptr_t)org);
	if (st != DMARC_PARSE_OKAY) {
		*why = opendmarc_policy_status_to_str(st);
		opendmarc_policy_connect_shutdown(pctx);
		return -1;
	}
	(void)opendmarc_policy_fetch_p(pctx, &p);
	(void)opendmarc_policy_fetch_sp(pctx, &sp);
	(void)opendmarc_policy_fetch_adkim(pctx, &adkim);
	(void)opendmarc_policy_fetch_aspf(pctx, &aspf);
	(void)opendmarc_policy_fetch_pct(pctx, &pct);
	opendmarc_policy_connect_shutdown(pctx);

	for (i = 0; i < t->ndkim && !pass; i++)
		pass = t->dkim[i].res == CHK_PASS &&
		    dmarc_aligned(c, t->dkim[i].domain, from, adkim);
	if (!pass)
		pass = dmarc_spf_aligned(c, t, from, aspf);
	/* sp= for a From domain below the record's domain (§6.3) */
	want = strcmp(record_domain, from) != 0 &&
	    sp != DMARC_RECORD_P_UNSPECIFIED ? sp : p;
	str_copy(t->dmarc.policy, dmarc_pname(want), sizeof(t->dmarc.policy));
	if (pass) {
		str_copy(t->dmarc.disposition, "none",
		    sizeof(t->dmarc.disposition));
		str_fmt(detail, sizeof(detail), "%s p=%s", from,
		    t->dmarc.policy);
		dmarc_finish(t, CHK_PASS, "DMARC_PASS", detail);
		return 0;
	}
	if (!dmarc_sampled(pct))	/* §6.6.4: the next weaker policy */
		want = want == DMARC_RECORD_P_REJECT ?
		    DMARC_RECORD_P_QUARANTINE : DMARC_RECORD_P_NONE;
	str_copy(t->dmarc.disposition, dmarc_pname(want),
	    sizeof(t->dmarc.disposition));
	str_fmt(detail, sizeof(detail), "%s p=%s dis=%s", from,
	    t->dmarc.policy, t->dmarc.disposition);
	dmarc_finish(t, CHK_FAIL, want == DMARC_RECORD_P_REJECT ?
	    "DMARC_FAIL_REJECT" : want == DMARC_RECORD_P_QUARANTINE ?
	    "DMARC_FAIL_QUARANTINE" : "DMARC_FAIL_NONE", detail);
	return 0;
}

/* dmarc_from - the From domain into out, or -1 and a reason. */
static int
dmarc_from(const struct txn *t, char *out, size_t outlen, const char **why)
{
	const char *value = NULL;
	size_t i, n = 0;

	for (i = 0; i < t->nhdr; i++) {
		if (strcasecmp(t->hdr[i].name, "From") == 0) {
			n++;
			value = t->hdr[i].value;
		}
	}
	if (n != 1) {
		*why = n == 0 ? "no From header" : "multiple From headers";
		return -1;
	}
	return chk_dmarc_from_domain(value, out, outlen, why);
}

void
chk_dmarc_run(struct chk_dmarc *c, struct txn *t)
{
	char from[256], detail[300];
	char *record = NULL, *rdomain = NULL, *org = NULL;
	const char *why = NULL;

	free(t->dmarc.from_domain);
	memset(&t->dmarc, 0, sizeof(t->dmarc));
	str_copy(t->dmarc.policy, "none", sizeof(t->dmarc.policy));
	str_copy(t->dmarc.disposition, "none", sizeof(t->dmarc.disposition));
	if (dmarc_from(t, from, sizeof(from), &why) < 0) {
		/* RFC 7489 §6.6.1: several authors defeat DMARC; the rules
		 * reject FROM_MULTIPLE by default. */
		if (why != NULL && strncmp(why, "multiple", 8) == 0)
			txn_symbol(t, "FROM_MULTIPLE", why);
		dmarc_finish(t, CHK_PERMERROR, "DMARC_PERMERROR", why);
		return;
	}
	free(t->from_domain);
	t->from_domain = xstrdup(from);
	t->dmarc.from_domain = xstrdup(from);
	switch (chk_dmarc_discover(c, from, &record, &rdomain, &org)) {
	case CHK_DMARC_NORECORD:
		dmarc_finish(t, CHK_NONE, "DMARC_NONE", from);
		break;
	case CHK_DMARC_DNSERROR:
		str_fmt(detail, sizeof(detail), "%s: DNS error", from);
		dmarc_finish(t, CHK_TEMPERROR, "DMARC_TEMPERROR", detail);
		break;
	case CHK_DMARC_FOUND:
		if (dmarc_evaluate(c, t, record, rdomain, org, &why) < 0) {
			str_fmt(detail, sizeof(detail), "%s: record at %s: %s",
			    from, rdomain, why != NULL ? why : "unusable");
			dmarc_finish(t, CHK_PERMERROR, "DMARC_PERMERROR",
			    detail);
		}
		break;
	}
	free(record);
	free(rdomain);
	free(org);
}
