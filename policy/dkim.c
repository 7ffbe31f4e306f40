/*
 * dkim.c - verify the DKIM signatures of a message with libopendkim.
 *
 * Called by the engine at each header, end of header, body chunk and end
 * of message (see dkim.h). Owns one DKIM_LIB (struct chk_dkim) for the
 * process and, per message, a struct dkim_msg in t->dkim_state holding
 * the libopendkim verifying handle, the raw DKIM-Signature values seen
 * and the outcome of each key lookup.
 *
 * libopendkim never does DNS here: a key-lookup callback asks our
 * resolver for SELECTOR._domainkey.DOMAIN TXT and notes the DNS status
 * per signature. The callback answers "not found" for every DNS failure
 * (a "try again" answer would abort the whole message in libopendkim);
 * chk_dkim_eom() then turns a noted SERVFAIL/timeout into temperror and
 * NXDOMAIN/NODATA into permerror.
 *
 * Options: bad signatures keep their handles (DKIM_LIBFLAGS_BADSIGHANDLES)
 * so each one gets its own permerror; clock drift CHK_DKIM_CLOCK_DRIFT
 * seconds for t= and x=; RSA keys under 1024 bits are refused (RFC 8301);
 * a prescreen callback ignores signatures past CHK_DKIM_MAX_SIGS.
 *
 * Thread safety: the DKIM_LIB is shared read-only after chk_dkim_new()
 * (libopendkim supports one library handle with one DKIM handle per
 * message on any thread); everything per message is in t->dkim_state.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "buf.h"
#include "dkim.h"
#include "dkim_keycache.h"
#include "dns.h"
#include "log.h"
#include "util.h"

#define DKIM_HDR_MAX	(256 * 1024)	/* one header field, folded */

struct chk_dkim {
	DKIM_LIB	*lib;
	struct dns	*dns;
};

/* The DNS outcome of one key lookup, by signature handle. */
struct dkim_key_note {
	const DKIM_SIGINFO *sig;
	enum dns_status	 status;
};

struct dkim_msg {
	struct chk_dkim	*c;
	DKIM		*dkim;		/* NULL: could not start */
	DKIM_STAT	 stat;		/* first library error, or OK */
	int		 nosig;		/* libopendkim found no signature */
	int		 eoh_done;
	struct {
		char	*value;		/* a DKIM-Signature value */
		char	*err;		/* dkim_header() refused it, or NULL */
	}		 raw[CHK_DKIM_MAX_SIGS];
	size_t		 nraw;
	size_t		 nsighdr;	/* DKIM-Signature fields seen */
	struct dkim_key_note key[CHK_DKIM_MAX_SIGS];
	size_t		 nkey;
};

static DKIM_CBSTAT dkim_key_lookup_cb(DKIM *, DKIM_SIGINFO *, u_char *,
		    size_t);
static DKIM_CBSTAT dkim_prescreen_cb(DKIM *, DKIM_SIGINFO **, int);

struct chk_dkim *
chk_dkim_new(struct dns *d, char *err, size_t errlen)
{
	struct chk_dkim *c;
	uint32_t flags = DKIM_LIBFLAGS_BADSIGHANDLES;
	uint64_t drift = CHK_DKIM_CLOCK_DRIFT;
	u_int minbits = 1024;

	c = xcalloc(1, sizeof(*c));
	c->dns = d;
	c->lib = dkim_init(NULL, NULL);
	if (c->lib == NULL) {
		str_copy(err, "dkim_init failed", errlen);
		free(c);
		return NULL;
	}
	if (dkim_options(c->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(c->lib, DKIM_OP_SETOPT, DKIM_OPTS_CLOCKDRIFT, &drift,
	    sizeof(drift)) != DKIM_STAT_OK ||
	    dkim_options(c->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits,
	    sizeof(minbits)) != DKIM_STAT_OK ||
	    dkim_set_key_lookup(c->lib, dkim_key_lookup_cb) != DKIM_STAT_OK ||
	    dkim_set_prescreen(c->lib, dkim_prescreen_cb) != DKIM_STAT_OK) {
		str_copy(err, "libopendkim refused an option", errlen);
		chk_dkim_free(c);
		return NULL;
	}
	if (!dkim_libfeature(c->lib, DKIM_FEATURE_SHA256) ||
	    !dkim_libfeature(c->lib, DKIM_FEATURE_ED25519))
		log_warn("dkim: libopendkim lacks sha256 or ed25519 support");
	return c;
}

void
chk_dkim_free(struct chk_dkim *c)
{
	if (c == NULL)
		return;
	if (c->lib != NULL)
		dkim_close(c->lib);
	chk_dkim_keycache_clear();
	free(c);
}

/* dkim_msg_get - the message state, made on first use. */
static struct dkim_msg *
dkim_msg_get(struct chk_dkim *c, struct txn *t)
{
	struct dkim_msg *m = t->dkim_state;
	DKIM_STAT st = DKIM_STAT_OK;

	if (m != NULL)
		return m;
	m = xcalloc(1, sizeof(*m));
	m->c = c;
	m->stat = DKIM_STAT_OK;
	m->dkim = dkim_verify(c->lib, (const u_char *)t->id, NULL, &st);
	if (m->dkim == NULL) {
		m->stat = st != DKIM_STAT_OK ? st : DKIM_STAT_NORESOURCE;
		log_warn("%s dkim: dkim_verify: %s", t->id,
		    dkim_getresultstr(m->stat));
	} else {
		dkim_set_user_context(m->dkim, m);
	}
	t->dkim_state = m;
	return m;
}

/* dkim_note_error - remember the first library error of the message. */
static void
dkim_note_error(struct dkim_msg *m, struct txn *t, const char *what,
    DKIM_STAT st)
{
	const char *e = m->dkim != NULL ? dkim_geterror(m->dkim) : NULL;

	if (m->stat == DKIM_STAT_OK)
		m->stat = st;
	log_debug("%s dkim: %s: %s%s%s", t->id, what, dkim_getresultstr(st),
	    e != NULL && *e != '\0' ? ": " : "", e != NULL ? e : "");
}

/*
 * dkim_field - "name:value" with every line end as CRLF and no trailing
 * line end, as dkim_header() wants it. -1 when longer than DKIM_HDR_MAX.
 */
static int
dkim_field(struct buf *b, const char *name, const char *value)
{
	const char *p;

	if (buf_puts(b, name) < 0 || buf_puts(b, ":") < 0)
		return -1;
	for (p = value; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\n') {
			if (buf_append(b, "\r\n", 2) < 0)
				return -1;
		} else if (buf_append(b, p, 1) < 0) {
			return -1;
		}
	}
	while (b->len >= 2 && b->data[b->len - 2] == '\r' &&
	    b->data[b->len - 1] == '\n') {
		b->len -= 2;
		b->data[b->len] = '\0';
	}
	return 0;
}

void
chk_dkim_header(struct chk_dkim *c, struct txn *t, const char *name,
    const char *value)
{
	struct dkim_msg *m = dkim_msg_get(c, t);
	struct buf b;
	DKIM_STAT st;

	int sig = strcasecmp(name, "DKIM-Signature") == 0;
	const char *e;

	if (sig) {
		m->nsighdr++;
		if (m->nraw < CHK_DKIM_MAX_SIGS)
			m->raw[m->nraw++].value = xstrdup(value);
	}
	if (m->dkim == NULL || m->eoh_done)
		return;
	buf_init(&b, DKIM_HDR_MAX);
	if (dkim_field(&b, name, value) < 0)
		st = DKIM_STAT_SYNTAX;
	else
		st = dkim_header(m->dkim, (u_char *)b.data, b.len);
	buf_free(&b);
	if (st == DKIM_STAT_OK)
		return;
	if (sig && st == DKIM_STAT_SYNTAX) {
		/* Only this signature is unusable; the others go on. */
		e = dkim_geterror(m->dkim);
		if (m->nsighdr <= CHK_DKIM_MAX_SIGS)
			m->raw[m->nraw - 1].err = xstrdup(e != NULL &&
			    *e != '\0' ? e : "signature syntax error");
		return;
	}
	dkim_note_error(m, t, "dkim_header", st);
}

void
chk_dkim_eoh(struct chk_dkim *c, struct txn *t)
{
	struct dkim_msg *m = dkim_msg_get(c, t);
	DKIM_STAT st;

	if (m->eoh_done)
		return;
	m->eoh_done = 1;
	if (m->dkim == NULL || m->stat != DKIM_STAT_OK)
		return;
	st = dkim_eoh(m->dkim);
	if (st == DKIM_STAT_NOSIG)
		m->nosig = 1;
	else if (st != DKIM_STAT_OK)
		dkim_note_error(m, t, "dkim_eoh", st);
}

void
chk_dkim_body(struct chk_dkim *c, struct txn *t, const unsigned char *p,
    size_t n)
{
	struct dkim_msg *m = dkim_msg_get(c, t);
	DKIM_STAT st;

	if (!m->eoh_done)
		chk_dkim_eoh(c, t);
	if (m->dkim == NULL || m->stat != DKIM_STAT_OK || m->nosig || n == 0)
		return;
	/* libopendkim does not write to the buffer; its API is not const. */
	st = dkim_body(m->dkim, (u_char *)(uintptr_t)p, n);
	if (st != DKIM_STAT_OK)
		dkim_note_error(m, t, "dkim_body", st);
}

/* dkim_prescreen_cb - verify at most CHK_DKIM_MAX_SIGS signatures. */
static DKIM_CBSTAT
dkim_prescreen_cb(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	int i;

	(void)dkim;
	for (i = CHK_DKIM_MAX_SIGS; i < nsigs; i++)
		dkim_sig_ignore(sigs[i]);
	if (nsigs > CHK_DKIM_MAX_SIGS)
		log_info("dkim: %d signatures, only the first %d verified",
		    nsigs, CHK_DKIM_MAX_SIGS);
	return DKIM_CBSTAT_CONTINUE;
}

/* dkim_key_note - record the DNS outcome for sig. */
static void
dkim_key_note(struct dkim_msg *m, const DKIM_SIGINFO *sig,
    enum dns_status s)
{
	size_t i;

	for (i = 0; i < m->nkey; i++)
		if (m->key[i].sig == sig)
			break;
	if (i == m->nkey) {
		if (m->nkey == CHK_DKIM_MAX_SIGS)
			return;
		m->nkey++;
	}
	m->key[i].sig = sig;
	m->key[i].status = s;
}

/*
 * dkim_key_lookup_cb - libopendkim's key lookup: SELECTOR._domainkey.D
 * TXT through our resolver; the first record is the key. Every failure
 * answers NOTFOUND (see the file comment) with the reason noted.
 */
static DKIM_CBSTAT
dkim_key_lookup_cb(DKIM *dkim, DKIM_SIGINFO *sig, u_char *out, size_t outlen)
{
	struct dkim_msg *m = dkim_get_user_context(dkim);
	const char *sel = (const char *)dkim_sig_getselector(sig);
	const char *dom = (const char *)dkim_sig_getdomain(sig);
	struct dns_result res;
	char name[300];
	enum dns_status s;

	if (m == NULL)
		return DKIM_CBSTAT_ERROR;
	if (sel == NULL || dom == NULL ||
	    str_fmt(name, sizeof(name), "%s._domainkey.%s", sel, dom) < 0 ||
	    !dns_valid_name(name)) {
		dkim_key_note(m, sig, DNS_BADNAME);
		return DKIM_CBSTAT_NOTFOUND;
	}
	s = dns_query(m->c->dns, name, DNS_T_TXT, &res);
	if (s == DNS_OK && (res.count == 0 ||
	    res.rr[0].textlen >= outlen ||
	    strlen(res.rr[0].text) != res.rr[0].textlen))
		s = DNS_MALFORMED;
	dkim_key_note(m, sig, s);
	if (s == DNS_OK)
		memcpy(out, res.rr[0].text, res.rr[0].textlen + 1);
	dns_result_free(&res);
	return s == DNS_OK ? DKIM_CBSTAT_CONTINUE : DKIM_CBSTAT_NOTFOUND;
}

/* dkim_key_status - the noted DNS status for sig, DNS_OK if none. */
static enum dns_status
dkim_key_status(const struct dkim_msg *m, const DKIM_SIGINFO *sig)
{
	size_t i;

	for (i = 0; i < m->nkey; i++)
		if (m->key[i].sig == sig)
			return m->key[i].status;
	return DNS_OK;
}

/* dkim_b8 - the first 8 characters of b=, white space removed. */
static char *
dkim_b8(const char *b)
{
	char out[9];
	size_t n = 0;

	for (; b != NULL && *b != '\0' && n < 8; b++)
		if (!isspace((unsigned char)*b))
			out[n++] = *b;
	out[n] = '\0';
	return xstrdup(out);
}

/*
 * dkim_raw_tag - the value of tag in a raw DKIM-Signature value (for
 * signatures libopendkim could not parse), white space trimmed; NULL.
 */
static char *
dkim_raw_tag(const char *raw, const char *tag)
{
	size_t tl = strlen(tag);
	const char *p = raw, *v, *e;

	while (p != NULL && *p != '\0') {
		while (*p == ';' || isspace((unsigned char)*p))
			p++;
		e = strchr(p, ';');
		if (strncasecmp(p, tag, tl) == 0) {
			v = p + tl;
			while (isspace((unsigned char)*v))
				v++;
			if (*v == '=') {
				char *s = e != NULL ? xstrndup(v + 1,
				    (size_t)(e - v - 1)) : xstrdup(v + 1);
				char *r = xstrdup(str_trim(s));

				free(s);
				return r;
			}
		}
		p = e;
	}
	return NULL;
}

/* dkim_add - append one result to t->dkim[]; strings are copied. */
static void
dkim_add(struct txn *t, enum chk_res r, const char *d, const char *s,
    const char *b, const char *a, const char *reason)
{
	struct txn_dkim_sig *e;

	t->dkim = xrealloc(t->dkim, (t->ndkim + 1) * sizeof(*t->dkim));
	e = &t->dkim[t->ndkim++];
	e->res = r;
	e->domain = str_lower(xstrdup(d != NULL ? d : ""));
	e->selector = xstrdup(s != NULL ? s : "");
	e->b = dkim_b8(b);
	e->algorithm = str_lower(xstrdup(a != NULL ? a : ""));
	e->reason = reason != NULL ? xstrdup(reason) : NULL;
}

/* dkim_results_clear - free t->dkim[]. */
static void
dkim_results_clear(struct txn *t)
{
	size_t i;

	for (i = 0; i < t->ndkim; i++) {
		free(t->dkim[i].domain);
		free(t->dkim[i].selector);
		free(t->dkim[i].b);
		free(t->dkim[i].algorithm);
		free(t->dkim[i].reason);
	}
	free(t->dkim);
	t->dkim = NULL;
	t->ndkim = 0;
}

/* dkim_key_result - the result when the key could not be had. */
static enum chk_res
dkim_key_result(const struct dkim_msg *m, DKIM_SIGINFO *sig, int err,
    const char **reason)
{
	switch (dkim_key_status(m, sig)) {
	case DNS_SERVFAIL:
		*reason = "key lookup: servfail";
		return CHK_TEMPERROR;
	case DNS_TIMEOUT:
		*reason = "key lookup: timeout";
		return CHK_TEMPERROR;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		*reason = "no key";
		return CHK_PERMERROR;
	case DNS_MALFORMED:
		*reason = "key record malformed";
		return CHK_PERMERROR;
	case DNS_BADNAME:
		*reason = "bad key name";
		return CHK_PERMERROR;
	case DNS_OK:
		break;
	}
	*reason = err == DKIM_SIGERROR_KEYFAIL ? "key lookup failed" : "no key";
	return err == DKIM_SIGERROR_KEYFAIL ? CHK_TEMPERROR : CHK_PERMERROR;
}

/* dkim_tag - a tag of a signature as libopendkim parsed it, or NULL. */
static const char *
dkim_tag(DKIM_SIGINFO *sig, const char *tag)
{
	return (const char *)dkim_sig_gettagvalue(sig, 0,
	    (u_char *)(uintptr_t)tag);
}

/*
 * dkim_base64_ok - v is base64 with folding white space (RFC 6376
 * base64string). libopendkim skips foreign characters, which would make
 * a corrupt b=/bh= a mere "fail"; it is a syntax error (permerror).
 */
static int
dkim_base64_ok(const char *v)
{
	size_t n = 0, pad = 0;

	if (v == NULL)
		return 0;
	for (; *v != '\0'; v++) {
		if (isspace((unsigned char)*v))
			continue;
		if (*v == '=') {
			pad++;
		} else if (pad > 0 || !(isalnum((unsigned char)*v) ||
		    *v == '+' || *v == '/')) {
			return 0;
		}
		n++;
	}
	return n > 0 && pad <= 2 && n % 4 == 0;
}

/*
 * dkim_classify - the RFC 8601 result of one processed signature and
 * the reason when it is not a pass (a static string).
 */
static enum chk_res
dkim_classify(const struct dkim_msg *m, DKIM_SIGINFO *sig,
    const char **reason)
{
	int err = dkim_sig_geterror(sig);
	unsigned int flags = dkim_sig_getflags(sig);
	int bh = dkim_sig_getbh(sig);
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;

	*reason = NULL;
	if ((err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_UNKNOWN ||
	    err == DKIM_SIGERROR_BADSIG) && (!dkim_base64_ok(dkim_tag(sig,
	    "b")) || !dkim_base64_ok(dkim_tag(sig, "bh")))) {
		*reason = "b= or bh= is not base64";
		return CHK_PERMERROR;
	}
	switch (err) {
	case DKIM_SIGERROR_NOKEY:
	case DKIM_SIGERROR_KEYFAIL:
		return dkim_key_result(m, sig, err, reason);
	case DKIM_SIGERROR_KEYREVOKED:
		*reason = "key revoked";
		return CHK_FAIL;
	case DKIM_SIGERROR_EXPIRED:
		*reason = "signature expired";
		return CHK_FAIL;
	case DKIM_SIGERROR_BADSIG:
		*reason = bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch" :
		    "signature mismatch";
		return CHK_FAIL;
	case DKIM_SIGERROR_OK:
	case DKIM_SIGERROR_UNKNOWN:
		break;
	default:
		*reason = dkim_sig_geterrorstr(err);
		if (*reason == NULL)
			*reason = "unusable signature";
		return CHK_PERMERROR;
	}
	if ((flags & DKIM_SIGFLAG_PROCESSED) == 0) {
		*reason = "not verified";
		return CHK_PERMERROR;
	}
	if ((flags & DKIM_SIGFLAG_PASSED) == 0) {
		*reason = "signature mismatch";
		return CHK_FAIL;
	}
	if (bh != DKIM_SIGBH_MATCH) {
		*reason = bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch" :
		    "body not verified";
		return bh == DKIM_SIGBH_MISMATCH ? CHK_FAIL : CHK_PERMERROR;
	}
	/* RFC 8301 §3.1: SHA-1 signatures are not valid. */
	if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK &&
	    alg == DKIM_SIGN_RSASHA1) {
		*reason = "rsa-sha1 not accepted (RFC 8301)";
		return CHK_PERMERROR;
	}
	return CHK_PASS;
}


/* dkim_from_siglist - one result per signature libopendkim knows;
 * returns how many it knows (ignored ones included). */
static int
dkim_from_siglist(struct dkim_msg *m, struct txn *t)
{
	DKIM_SIGINFO **sigs = NULL;
	const char *reason;
	enum chk_res r;
	unsigned int flags;
	int i, n = 0;

	if (dkim_getsiglist(m->dkim, &sigs, &n) != DKIM_STAT_OK)
		return 0;
	for (i = 0; i < n; i++) {
		flags = dkim_sig_getflags(sigs[i]);
		if ((flags & DKIM_SIGFLAG_IGNORE) != 0)
			continue;
		/* dkim_eom() may stop early; finish each signature. */
		if ((flags & DKIM_SIGFLAG_PROCESSED) == 0 ||
		    ((flags & DKIM_SIGFLAG_PASSED) != 0 &&
		    dkim_sig_getbh(sigs[i]) == DKIM_SIGBH_UNTESTED))
			(void)dkim_sig_process(m->dkim, sigs[i]);
		r = dkim_classify(m, sigs[i], &reason);
		dkim_add(t, r, dkim_tag(sigs[i], "d"), dkim_tag(sigs[i], "s"),
		    dkim_tag(sigs[i], "b"), dkim_tag(sigs[i], "a"), reason);
	}
	return n;
}

/*
 * dkim_from_raw - permerror for at most max DKIM-Signature fields that
 * dkim_header() refused; with a reason, for every field seen (the
 * library could not process the message at all).
 */
static void
dkim_from_raw(struct dkim_msg *m, struct txn *t, const char *reason,
    size_t max)
{
	char *d, *s, *b, *a;
	size_t i;

	for (i = 0; i < m->nraw && max > 0; i++) {
		if (reason == NULL && m->raw[i].err == NULL)
			continue;
		max--;
		d = dkim_raw_tag(m->raw[i].value, "d");
		s = dkim_raw_tag(m->raw[i].value, "s");
		b = dkim_raw_tag(m->raw[i].value, "b");
		a = dkim_raw_tag(m->raw[i].value, "a");
		dkim_add(t, CHK_PERMERROR, d, s, b, a,
		    m->raw[i].err != NULL ? m->raw[i].err : reason);
		free(d);
		free(s);
		free(b);
		free(a);
	}
}

/* dkim_symbols - one symbol per result kind; detail lists the d=. */
static void
dkim_symbols(struct txn *t)
{
	static const struct {
		enum chk_res	 res;
		const char	*name;
	} kinds[] = {
		{ CHK_PASS, "DKIM_PASS" },
		{ CHK_FAIL, "DKIM_FAIL" },
		{ CHK_TEMPERROR, "DKIM_TEMPERROR" },
		{ CHK_PERMERROR, "DKIM_PERMERROR" },
	};
	struct buf b;
	size_t k, i;

	for (k = 0; k < ARRAY_LEN(kinds); k++) {
		buf_init(&b, 200);
		for (i = 0; i < t->ndkim; i++) {
			if (t->dkim[i].res != kinds[k].res)
				continue;
			(void)buf_printf(&b, "%sd=%s", b.len > 0 ? " " : "",
			    t->dkim[i].domain[0] != '\0' ?
			    t->dkim[i].domain : "?");
		}
		if (b.len > 0)
			txn_symbol(t, kinds[k].name, b.data);
		buf_free(&b);
	}
}

void
chk_dkim_eom(struct chk_dkim *c, struct txn *t)
{
	struct dkim_msg *m = dkim_msg_get(c, t);
	DKIM_STAT st;
	const char *why;
	int n;

	dkim_results_clear(t);
	if (!m->eoh_done)
		chk_dkim_eoh(c, t);
	if (m->nsighdr == 0) {
		txn_symbol(t, "DKIM_NONE", NULL);
		return;
	}
	if (m->dkim != NULL && m->stat == DKIM_STAT_OK && !m->nosig) {
		st = dkim_eom(m->dkim, NULL);
		switch (st) {
		case DKIM_STAT_OK:
		case DKIM_STAT_BADSIG:
		case DKIM_STAT_NOKEY:
		case DKIM_STAT_KEYFAIL:
		case DKIM_STAT_REVOKED:
		case DKIM_STAT_CANTVRFY:
		case DKIM_STAT_NOSIG:
			/* Refused fields usually still have a (bad) handle:
			 * report only those libopendkim does not list. */
			n = dkim_from_siglist(m, t);
			if ((size_t)n < m->nsighdr)
				dkim_from_raw(m, t, NULL, m->nsighdr - (size_t)n);
			break;
		default:
			dkim_note_error(m, t, "dkim_eom", st);
			break;
		}
	}
	if (t->ndkim == 0) {
		why = m->dkim != NULL ? dkim_geterror(m->dkim) : NULL;
		if (why == NULL || *why == '\0')
			why = m->stat != DKIM_STAT_OK ?
			    dkim_getresultstr(m->stat) : "signature not usable";
		dkim_from_raw(m, t, why, CHK_DKIM_MAX_SIGS);
	}
	dkim_symbols(t);
}

void
chk_dkim_txn_free(struct txn *t)
{
	struct dkim_msg *m = t->dkim_state;
	size_t i;

	dkim_results_clear(t);
	if (m == NULL)
		return;
	for (i = 0; i < m->nraw; i++) {
		free(m->raw[i].value);
		free(m->raw[i].err);
	}
	if (m->dkim != NULL)
		(void)dkim_free(m->dkim);
	free(m);
	t->dkim_state = NULL;
}
