/*
 * rules_eval.c - evaluate the rule set's regex, list, built-in list,
 * DNSBL and meta rules over a transaction.
 *
 * Called by the engine (policy/engine.c) at each SMTP stage: connect
 * (client_ip, client_name, whitelist/blacklist_clients, DNSBL/DNSWL),
 * HELO (helo), MAIL (from, tls, blacklist/whitelist_from with SPF, RHSBL
 * of the sender domain), RCPT (the newest rcpt) and end of message
 * (headers, body, attachments, whitelist/blacklist_from of the From
 * header with DKIM or SPF, RHSBL of the From domain; then meta rules).
 * Also holds the lint of `configtest`. It owns nothing beyond a call:
 * decoded header values and the PCRE2 match data live for one call.
 *
 * Thread safety: reads the immutable rule set; the match context is
 * shared read-only, match data is per call.
 * Security: every input is cut at RULES_MAX_INPUT (body targets at the
 * decoder's bound) and every match runs under the PCRE2 limits of the
 * set's match context, so no pattern can take unbounded time.
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dnsbl.h"
#include "log.h"
#include "mime.h"
#include "rules_int.h"
#include "util.h"

/* What one evaluation call shares between rules. */
struct rules_ctx {
	const struct rules	*r;
	struct txn		*t;
	pcre2_match_data	*md;
	char			**hdr;		/* decoded header values */
	int			 added;
};

/* rules_excerpt - a short printable copy of s[0..len) for a detail. */
static void
rules_excerpt(const char *s, size_t len, char *out, size_t outlen)
{
	size_t n = len < 60 ? len : 60, o = 0;

	/* Do not cut a UTF-8 sequence. */
	while (n > 0 && n < len && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	if (n < len && o + 3 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/*
 * rules_match - run rx over subject (cut at max); on a match add the
 * rule's symbol with what it matched on. Returns 1 on a match.
 */
static int
rules_match(struct rules_ctx *c, const struct rules_rx *rx, const char *what,
    const char *subj, size_t len, size_t max)
{
	char ex[128], detail[256];

	if (len > max)
		len = max;
	int rc = pcre2_match(rx->code, (PCRE2_SPTR)subj, len, 0, 0, c->md,
	    c->r->mctx);
	if (rc >= 0) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
		size_t b = ov[0] < len ? ov[0] : len;
		size_t e = ov[1] >= b && ov[1] <= len ? ov[1] : b;
		rules_excerpt(subj + b, e - b, ex, sizeof(ex));
		str_fmt(detail, sizeof(detail), "%s \"%s\"", what, ex);
		txn_symbol(c->t, rx->name, detail);
		c->added++;
		return 1;
	}
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	PCRE2_UCHAR msg[128];
	pcre2_get_error_message(rc, msg, sizeof(msg));
	log_warn("%s: rule %s on %s: %s (counted as no match)", c->t->id,
	    rx->name, what, (char *)msg);
	str_fmt(detail, sizeof(detail), "%s on %s: %s", rx->name, what,
	    (char *)msg);
	txn_symbol(c->t, "RULES_LIMIT", detail);
	return 0;
}

/* rules_from_addr - the address of a From header value (decoded) into
 * out: inside <> when present, else the word holding '@'. */
static void
rules_from_addr(const char *v, char *out, size_t outlen)
{
	const char *lt = strrchr(v, '<'), *b, *e;

	out[0] = '\0';
	if (lt != NULL && (e = strchr(lt, '>')) != NULL) {
		b = lt + 1;
	} else {
		const char *at = strchr(v, '@');
		if (at == NULL)
			return;
		for (b = at; b > v && b[-1] != ' ' && b[-1] != '\t' && b[-1] != ','; b--)
			;
		for (e = at; *e && *e != ' ' && *e != '\t' && *e != ','; e++)
			;
	}
	size_t n = (size_t)(e - b);
	if (n >= outlen)
		return;
	memcpy(out, b, n);
	out[n] = '\0';
	str_lower(out);
}

/* rules_one - test rx against one value (what names it for the trace).
 * List rules test membership, regex rules match. */
static int
rules_one(struct rules_ctx *c, const struct rules_rx *rx, const char *what,
    const char *v, size_t len, size_t max)
{
	if (v == NULL)
		return 0;
	if (rx->list == NULL)
		return rules_match(c, rx, what, v, len, max);
	char addr[512], detail[600];
	if (rx->target == RTG_FROM_HEADER) {
		rules_from_addr(v, addr, sizeof(addr));
		v = addr;
	}
	if (!rules_list_match(c->r, rx->list, v))
		return 0;
	str_fmt(detail, sizeof(detail), "%s %.300s in %s", what, v, rx->list);
	txn_symbol(c->t, rx->name, detail);
	c->added++;
	return 1;
}

static const char *
rules_client_name(const struct txn *t)
{
	if (t->iprev_name != NULL)
		return t->iprev_name;
	if (t->client_name != NULL && strcmp(t->client_name, "unknown") != 0)
		return t->client_name;
	return NULL;
}

/* rules_headers - rules on header targets. */
static void
rules_headers(struct rules_ctx *c, const struct rules_rx *rx)
{
	const struct txn *t = c->t;
	const char *want = rx->target == RTG_SUBJECT ? "Subject" :
	    rx->target == RTG_FROM_HEADER ? "From" : rx->header;
	char what[160];

	for (size_t i = 0; i < t->nhdr; i++) {
		const char *v = c->hdr[i];
		if (rx->target == RTG_HEADER_ALL) {
			/* "Name: value" so one pattern can test both. */
			char *nv = xasprintf("%s: %s", t->hdr[i].name, v);
			str_fmt(what, sizeof(what), "header %.120s", t->hdr[i].name);
			int hit = rules_one(c, rx, what, nv, strlen(nv), RULES_MAX_INPUT);
			free(nv);
			if (hit)
				return;
			continue;
		}
		if (strcasecmp(t->hdr[i].name, want) != 0)
			continue;
		str_fmt(what, sizeof(what), "%s", rx->target == RTG_HEADER ?
		    t->hdr[i].name : rules_target_name(rx->target));
		if (rules_one(c, rx, what, v, strlen(v), RULES_MAX_INPUT))
			return;
	}
}

/* rules_rx_eom - one end-of-message rule. */
static void
rules_rx_eom(struct rules_ctx *c, const struct rules_rx *rx,
    const struct mime *m)
{
	size_t len;
	const char *s;

	switch (rx->target) {
	case RTG_HEADER:
	case RTG_HEADER_ALL:
	case RTG_SUBJECT:
	case RTG_FROM_HEADER:
		rules_headers(c, rx);
		break;
	case RTG_BODY:
	case RTG_RAW_BODY:
		if (m == NULL)
			break;
		s = rx->target == RTG_BODY ? mime_text(m, &len) : mime_raw(m, &len);
		rules_one(c, rx, rules_target_name(rx->target), s, len, len);
		break;
	case RTG_ATTACH_NAME:
	case RTG_ATTACH_TYPE:
		for (size_t i = 0; m != NULL && i < mime_nattach(m); i++) {
			s = rx->target == RTG_ATTACH_NAME ? mime_attach_name(m, i) :
			    mime_attach_type(m, i);
			if (rules_one(c, rx, rules_target_name(rx->target), s,
			    strlen(s), RULES_MAX_INPUT))
				break;
		}
		break;
	default:
		break;
	}
}

/* rules_tls_value - the tls target: "VERSION CIPHER" for a TLS
 * session (a part the front end did not learn is "unknown"), "none"
 * without TLS. A value too long for out is cut. */
static const char *
rules_tls_value(const struct txn *t, char *out, size_t outlen)
{
	if (t->tls_version == NULL && t->tls_cipher == NULL)
		return "none";
	(void)str_fmt(out, outlen, "%s %s",
	    t->tls_version ? t->tls_version : "unknown",
	    t->tls_cipher ? t->tls_cipher : "unknown");
	return out;
}

/* rules_envelope - one rule on a connection or envelope target. */
static void
rules_envelope(struct rules_ctx *c, const struct rules_rx *rx)
{
	const struct txn *t = c->t;
	const char *v = NULL;
	char tls[256];

	switch (rx->target) {
	case RTG_CLIENT_IP:	v = t->client_ip; break;
	case RTG_CLIENT_NAME:	v = rules_client_name(t); break;
	case RTG_HELO:		v = t->helo; break;
	case RTG_FROM:		v = t->mail_from; break;
	case RTG_RCPT:		v = t->nrcpt ? t->rcpt[t->nrcpt - 1] : NULL; break;
	case RTG_TLS:		v = rules_tls_value(t, tls, sizeof(tls)); break;
	default:		break;
	}
	if (v != NULL)
		rules_one(c, rx, rules_target_name(rx->target), v, strlen(v),
		    RULES_MAX_INPUT);
}

/* rules_dkim_pass_for - a passing DKIM signature whose d= is domain or
 * a parent of it (relaxed alignment, RFC 7489 §3.1.1, without the PSL:
 * a signature by a public suffix is not one anyone can get). */
static int
rules_dkim_pass_for(const struct txn *t, const char *domain)
{
	for (size_t i = 0; i < t->ndkim; i++)
		if (t->dkim[i].res == CHK_PASS && t->dkim[i].domain != NULL &&
		    strchr(t->dkim[i].domain, '.') != NULL &&
		    str_is_subdomain(domain, t->dkim[i].domain))
			return 1;
	return 0;
}

static int
rules_spf_pass_for(const struct txn *t, const char *domain)
{
	return t->spf.res == CHK_PASS && t->spf.domain != NULL &&
	    strcasecmp(t->spf.domain, domain) == 0 && t->spf.identity != NULL &&
	    strcmp(t->spf.identity, "mailfrom") == 0;
}

static void
rules_sym(struct rules_ctx *c, const char *name, const char *detail)
{
	if (!txn_has_symbol(c->t, name)) {
		txn_symbol(c->t, name, detail);
		c->added++;
	}
}

/* rules_builtin - the built-in lists and DNS lists of a stage. */
static void
rules_builtin(struct rules_ctx *c, enum rules_stage stage, struct dns *d)
{
	const struct rules *r = c->r;
	struct txn *t = c->t;
	char detail[600], addr[512];

	switch (stage) {
	case RS_CONNECT:
		if (rules_list_match(r, "whitelist_clients", t->client_ip))
			rules_sym(c, "WHITELIST_CLIENT", "client in whitelist_clients");
		if (rules_list_match(r, "blacklist_clients", t->client_ip))
			rules_sym(c, "BLACKLIST_CLIENT", "client in blacklist_clients");
		if (d != NULL)
			dnsbl_run_ip(r->dnsbl, d, t, t->client_ip);
		break;
	case RS_MAIL:
		if (t->mail_from == NULL || t->mail_from[0] == '\0')
			break;
		if (rules_list_match(r, "blacklist_from", t->mail_from)) {
			str_fmt(detail, sizeof(detail), "sender %.500s", t->mail_from);
			rules_sym(c, "BLACKLIST_FROM", detail);
		}
		if (t->mail_domain != NULL &&
		    rules_list_match(r, "whitelist_from", t->mail_from) &&
		    rules_spf_pass_for(t, t->mail_domain)) {
			str_fmt(detail, sizeof(detail), "sender %.500s, SPF pass",
			    t->mail_from);
			rules_sym(c, "WHITELIST_FROM", detail);
		}
		if (d != NULL)
			dnsbl_run_domain(r->dnsbl, d, t, t->mail_domain, "sender");
		break;
	case RS_EOM: {
		const char *from = txn_header_get(t, "From", 0);
		char *dec = from ? mime_decode_header(from, RULES_MAX_INPUT) : NULL;
		rules_from_addr(dec ? dec : "", addr, sizeof(addr));
		free(dec);
		const char *dom = strrchr(addr, '@');
		dom = dom ? dom + 1 : NULL;
		if (addr[0] && rules_list_match(r, "blacklist_from", addr)) {
			str_fmt(detail, sizeof(detail), "From %.500s", addr);
			rules_sym(c, "BLACKLIST_FROM", detail);
		}
		if (dom && *dom && rules_list_match(r, "whitelist_from", addr) &&
		    (rules_dkim_pass_for(t, dom) || rules_spf_pass_for(t, dom))) {
			str_fmt(detail, sizeof(detail), "From %.500s, %s pass", addr,
			    rules_dkim_pass_for(t, dom) ? "DKIM" : "SPF");
			rules_sym(c, "WHITELIST_FROM", detail);
		}
		if (t->mail_domain && t->mail_from &&
		    rules_list_match(r, "whitelist_from", t->mail_from) &&
		    rules_dkim_pass_for(t, t->mail_domain)) {
			str_fmt(detail, sizeof(detail), "sender %.500s, DKIM pass",
			    t->mail_from);
			rules_sym(c, "WHITELIST_FROM", detail);
		}
		if (d != NULL && dom && *dom)
			dnsbl_run_domain(r->dnsbl, d, t, dom, "from");
		break;
	}
	default:
		break;
	}
}

int
rules_eval(const struct rules *r, struct txn *t, enum rules_stage stage,
    const struct mime *m, struct dns *d)
{
	struct rules_ctx c = { .r = r, .t = t };

	rules_builtin(&c, stage, d);
	if (stage == RS_EOM && m != NULL && (mime_flags(m) & MIME_F_BROKEN))
		rules_sym(&c, "MIME_BROKEN", "malformed MIME structure or encoding");
	if (r->nrx == 0)
		return c.added;
	c.md = pcre2_match_data_create(1, NULL);
	if (stage == RS_EOM && t->nhdr > 0) {
		c.hdr = xcalloc(t->nhdr, sizeof(*c.hdr));
		for (size_t i = 0; i < t->nhdr; i++) {
			const char *v = t->hdr[i].value ? t->hdr[i].value : "";
			while (*v == ' ' || *v == '\t')
				v++;
			c.hdr[i] = mime_decode_header(v, RULES_MAX_INPUT);
		}
	}
	for (size_t i = 0; i < r->nrx; i++) {
		const struct rules_rx *rx = &r->rx[i];
		if (rules_target_stage(rx->target) != stage ||
		    (stage != RS_RCPT && txn_has_symbol(t, rx->name)))
			continue;
		if (stage == RS_EOM)
			rules_rx_eom(&c, rx, m);
		else
			rules_envelope(&c, rx);
	}
	if (c.hdr != NULL) {
		for (size_t i = 0; i < t->nhdr; i++)
			free(c.hdr[i]);
		free(c.hdr);
	}
	pcre2_match_data_free(c.md);
	return c.added;
}

static int
rules_has_cb(void *arg, const char *name)
{
	return txn_has_symbol(arg, name);
}

int
rules_eval_meta(const struct rules *r, struct txn *t)
{
	int added = 0;

	for (size_t i = 0; i < r->nmeta; i++) {
		if (txn_has_symbol(t, r->meta[i].name) ||
		    !meta_eval(r->meta[i].expr, rules_has_cb, t))
			continue;
		txn_symbol(t, r->meta[i].name, "meta expression true");
		added++;
	}
	return added;
}

struct mime *
rules_mime_new(const struct txn *t, size_t max_bytes)
{
	struct buf h;

	buf_init(&h, RULES_MAX_INPUT);
	for (size_t i = 0; i < t->nhdr; i++)
		if (strncasecmp(t->hdr[i].name, "Content-", 8) == 0 ||
		    strcasecmp(t->hdr[i].name, "MIME-Version") == 0)
			buf_printf(&h, "%s:%s\n", t->hdr[i].name,
			    t->hdr[i].value ? t->hdr[i].value : "");
	struct mime *m = mime_new(h.data ? h.data : "", max_bytes);
	buf_free(&h);
	return m;
}

static int
rules_is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* rules_entry_is_net - a list entry that is an IP address or CIDR. */
static int
rules_entry_is_net(const char *e)
{
	return strchr(e, '/') != NULL || rules_is_ip(e);
}

static int
rules_domain_entry(const char *e, const char *domain)
{
	if (e[0] == '.')
		return str_is_subdomain(domain, e + 1);
	return strcasecmp(domain, e) == 0;
}

int
rules_list_match(const struct rules *r, const char *list, const char *value)
{
	const struct rules_list *l = NULL;

	if (value == NULL || value[0] == '\0')
		return 0;
	for (size_t i = 0; i < r->nlist; i++)
		if (strcmp(r->list[i].name, list) == 0)
			l = &r->list[i];
	if (l == NULL)
		return 0;
	int ip = rules_is_ip(value);
	const char *at = ip ? NULL : strrchr(value, '@');
	for (size_t i = 0; i < l->n; i++) {
		const char *e = l->items[i];
		if (rules_entry_is_net(e)) {
			if (ip && rules_ip_in_cidr(value, e) == 1)
				return 1;
			continue;
		}
		if (ip)
			continue;
		if (strchr(e, '@') != NULL) {
			if (at == NULL)
				continue;
			if (e[0] == '@' ? strcasecmp(e + 1, at + 1) == 0 :
			    fnmatch(e, value, FNM_CASEFOLD) == 0)
				return 1;
			continue;
		}
		if (rules_domain_entry(e, at ? at + 1 : value))
			return 1;
	}
	return 0;
}

size_t
rules_rx_count(const struct rules *r)
{
	return r->nrx;
}

/* Symbols the checks add (not from the rule files), for lint. */
static const char *const rules_builtin_syms[] = {
	"IPREV_PASS", "IPREV_FAIL", "IPREV_NONE", "IPREV_TEMPERROR",
	"HELO_INVALID", "HELO_BARE_IP", "HELO_LITERAL_MISMATCH", "HELO_NOT_FQDN",
	"HELO_FORGED_OURS", "HELO_NXDOMAIN", "HELO_SPF_PASS", "HELO_SPF_FAIL",
	"HELO_SPF_SOFTFAIL", "SENDER_NXDOMAIN", "SENDER_NULL_MX", "SENDER_NO_MX",
	"SENDER_INVALID", "SENDER_TEMPERROR", "MAIL_MALFORMED", "RCPT_MALFORMED",
	"SPF_PASS", "SPF_FAIL", "SPF_SOFTFAIL", "SPF_NEUTRAL", "SPF_NONE",
	"SPF_PERMERROR", "SPF_TEMPERROR", "DKIM_PASS", "DKIM_FAIL", "DKIM_NONE",
	"DKIM_PERMERROR", "DKIM_TEMPERROR", "DMARC_PASS", "DMARC_FAIL_REJECT",
	"DMARC_FAIL_QUARANTINE", "DMARC_FAIL_NONE", "DMARC_NONE",
	"DMARC_PERMERROR", "DMARC_TEMPERROR", "FROM_MULTIPLE", "RELAY_DENIED",
	"LOCAL_SPOOF", "HARVEST_BLOCKED", "RATE_LIMITED", "WHITELIST_CLIENT",
	"BLACKLIST_CLIENT", "WHITELIST_FROM", "BLACKLIST_FROM", "RULES_LIMIT",
	"DNSBL_UNHEALTHY", "MIME_BROKEN",
};

static int
rules_known_symbol(const struct rules *r, const char *s)
{
	for (size_t i = 0; i < ARRAY_LEN(rules_builtin_syms); i++)
		if (strcmp(rules_builtin_syms[i], s) == 0)
			return 1;
	for (size_t i = 0; i < r->nrx; i++)
		if (strcmp(r->rx[i].name, s) == 0)
			return 1;
	for (size_t i = 0; i < r->nmeta; i++)
		if (strcmp(r->meta[i].name, s) == 0)
			return 1;
	for (size_t i = 0; i < dnsbl_count(r->dnsbl); i++)
		if (strcmp(dnsbl_symbol(r->dnsbl, i), s) == 0)
			return 1;
	return rules_has_score(r, s) || rules_action(r, s) != NULL;
}

static const char *
rules_fname(const struct rules *r, int file)
{
	return file >= 0 && file < 2 && r->file_names[file] ?
	    r->file_names[file] : "?";
}

int
rules_lint(const struct rules *r, char *out, size_t outlen)
{
	struct buf b;
	int n = 0;
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);

	buf_init(&b, outlen > 0 ? outlen - 1 : 0);
	for (size_t i = 0; i < r->nmeta; i++) {
		const struct rules_meta *m = &r->meta[i];
		for (size_t k = 0; k < meta_nsyms(m->expr); k++) {
			const char *s = meta_sym(m->expr, k);
			size_t later;
			for (later = i + 1; later < r->nmeta; later++)
				if (strcmp(r->meta[later].name, s) == 0)
					break;
			if (later < r->nmeta) {
				buf_printf(&b, "%s:%d: warning: meta %s uses meta %s, "
				    "which is evaluated after it (define it first)\n",
				    rules_fname(r, m->file), m->line, m->name, s);
				n++;
			} else if (!rules_known_symbol(r, s)) {
				buf_printf(&b, "%s:%d: warning: meta %s uses unknown "
				    "symbol %s\n", rules_fname(r, m->file), m->line,
				    m->name, s);
				n++;
			}
		}
	}
	for (size_t i = 0; i < r->nrx; i++) {
		const struct rules_rx *x = &r->rx[i];
		if (x->code != NULL && pcre2_match(x->code, (PCRE2_SPTR)"", 0, 0, 0,
		    md, r->mctx) >= 0) {
			buf_printf(&b, "%s:%d: warning: rule %s: pattern %s matches "
			    "the empty string (it matches every message)\n",
			    rules_fname(r, x->file), x->line, x->name, x->pattern);
			n++;
		}
		if (x->list != NULL && !rules_list_exists(r, x->list)) {
			buf_printf(&b, "%s:%d: warning: rule %s: list %s is not "
			    "defined (it never matches)\n", rules_fname(r, x->file),
			    x->line, x->name, x->list);
			n++;
		}
	}
	pcre2_match_data_free(md);
	n += rules_lint_unreachable(r, &b);
	if (outlen > 0)
		str_copy(out, b.data ? b.data : "", outlen);
	buf_free(&b);
	return n;
}
