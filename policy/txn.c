/*
 * txn.c - the transaction object's setters and message-part lifetime.
 *
 * Creation and destruction belong to the engine (eng_txn_new/free),
 * which also frees check state; this file owns the plain data fields.
 * A txn is used by one thread at a time.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "txn.h"
#include "util.h"

const char *
chk_res_name(enum chk_res r)
{
	switch (r) {
	case CHK_NONE:		return "none";
	case CHK_PASS:		return "pass";
	case CHK_FAIL:		return "fail";
	case CHK_SOFTFAIL:	return "softfail";
	case CHK_NEUTRAL:	return "neutral";
	case CHK_TEMPERROR:	return "temperror";
	case CHK_PERMERROR:	return "permerror";
	case CHK_POLICY:	return "policy";
	}
	return "none";
}

const char *
verdict_name(enum verdict_action a)
{
	switch (a) {
	case VERDICT_CONTINUE:		return "continue";
	case VERDICT_ACCEPT:		return "accept";
	case VERDICT_ADD_HEADER:	return "add_header";
	case VERDICT_QUARANTINE:	return "quarantine";
	case VERDICT_TEMPFAIL:		return "tempfail";
	case VERDICT_REJECT:		return "reject";
	case VERDICT_DISCARD:		return "discard";
	}
	return "?";
}

static int
verdict_valid_rcode(const char *r)
{
	return (r[0] == '4' || r[0] == '5') && r[1] >= '0' && r[1] <= '9' &&
	    r[2] >= '0' && r[2] <= '9' && r[3] == '\0';
}

/* verdict_valid_xcode - "C.SSS.DDD" (RFC 3463) of class cls. */
static int
verdict_valid_xcode(const char *x, char cls)
{
	int part = 0, digits = 0;

	if (x[0] != cls || x[1] != '.')
		return 0;
	for (const char *p = x; *p != '\0'; p++) {
		if (*p == '.') {
			if (digits == 0 || ++part > 2)
				return 0;
			digits = 0;
		} else if (*p >= '0' && *p <= '9') {
			if (++digits > 3)
				return 0;
		} else {
			return 0;
		}
	}
	return part == 2 && digits > 0;
}

int
verdict_reply(const struct verdict *v, char rcode[4], char xcode[16],
    char *text, size_t textlen)
{
	int temp = v->action == VERDICT_TEMPFAIL;
	const char *src;
	size_t n = 0;

	str_copy(rcode, temp ? "451" : "550", 4);
	if (verdict_valid_rcode(v->rcode)) {
		str_copy(rcode, v->rcode, 4);
		temp = rcode[0] == '4';
	}
	str_copy(xcode, verdict_valid_xcode(v->xcode, rcode[0]) ? v->xcode :
	    temp ? "4.7.1" : "5.7.1", 16);
	src = v->text[0] ? v->text : temp ? "Try again later" :
	    "Rejected by policy";
	if (textlen == 0)
		return temp;
	for (; *src != '\0' && n + 1 < textlen; src++) {
		unsigned char ch = (unsigned char)*src;
		text[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	text[n] = '\0';
	return temp;
}

static void
txn_replace(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrdup(v) : NULL;
}

void
txn_set_client(struct txn *t, const char *ip, int port, const char *name)
{
	txn_replace(&t->client_ip, ip ? ip : "0.0.0.0");
	t->client_port = port;
	txn_replace(&t->client_name, name);
}

void
txn_set_helo(struct txn *t, const char *helo)
{
	txn_replace(&t->helo, helo);
}

void
txn_set_auth(struct txn *t, const char *user)
{
	txn_replace(&t->auth_user, user && *user ? user : NULL);
}

void
txn_set_tls(struct txn *t, const char *version, const char *cipher)
{
	txn_replace(&t->tls_version, version && *version ? version : NULL);
	txn_replace(&t->tls_cipher, cipher && *cipher ? cipher : NULL);
}

void
txn_set_queue_id(struct txn *t, const char *id)
{
	txn_replace(&t->queue_id, id && *id ? id : NULL);
}

void
txn_set_our_hostname(struct txn *t, const char *name)
{
	if (name != NULL && *name != '\0')
		txn_replace(&t->our_hostname, name);
}

int
txn_set_mail(struct txn *t, const char *in)
{
	struct addr a;
	enum addr_status st = addr_parse(in ? in : "", &a);

	free(t->mail_domain);
	t->mail_domain = NULL;
	if (st == ADDR_NULL) {
		txn_replace(&t->mail_from, "");
		return 0;
	}
	if (st != ADDR_OK) {
		/* Keep what was given, bounded, for the log and trace. */
		free(t->mail_from);
		t->mail_from = xstrndup(in ? in : "", 512);
		txn_symbol(t, "MAIL_MALFORMED", addr_status_name(st));
		return -1;
	}
	free(t->mail_from);
	t->mail_from = xasprintf("%s@%s", a.local, a.domain);
	if (!a.literal)
		t->mail_domain = xstrdup(a.domain);
	return 0;
}

int
txn_add_rcpt(struct txn *t, const char *in)
{
	struct addr a;
	enum addr_status st = addr_parse(in ? in : "", &a);

	t->rcpt = xrealloc(t->rcpt, (t->nrcpt + 1) * sizeof(*t->rcpt));
	if (st != ADDR_OK) {
		t->rcpt[t->nrcpt++] = xstrndup(in ? in : "", 512);
		txn_symbol(t, "RCPT_MALFORMED", addr_status_name(st));
		return -1;
	}
	t->rcpt[t->nrcpt++] = xasprintf("%s@%s", a.local, a.domain);
	return 0;
}

void
txn_add_header(struct txn *t, const char *name, const char *value)
{
	t->hdr = xrealloc(t->hdr, (t->nhdr + 1) * sizeof(*t->hdr));
	t->hdr[t->nhdr].name = xstrdup(name ? name : "");
	t->hdr[t->nhdr].value = xstrdup(value ? value : "");
	t->nhdr++;
}

const char *
txn_header_get(const struct txn *t, const char *name, int n)
{
	for (size_t i = 0; i < t->nhdr; i++)
		if (strcasecmp(t->hdr[i].name, name) == 0 && n-- == 0)
			return t->hdr[i].value;
	return NULL;
}

const char *
txn_symbol_detail(const struct txn *t, const char *name)
{
	for (size_t i = 0; i < t->nsym; i++)
		if (strcmp(t->sym[i].name, name) == 0)
			return t->sym[i].detail ? t->sym[i].detail : "";
	return NULL;
}

int
txn_has_symbol(const struct txn *t, const char *name)
{
	return txn_symbol_detail(t, name) != NULL;
}

/* Connection-level symbols are those added before any MAIL FROM. */
void
txn_symbol(struct txn *t, const char *name, const char *detail)
{
	if (txn_has_symbol(t, name))
		return;
	t->sym = xrealloc(t->sym, (t->nsym + 1) * sizeof(*t->sym));
	t->sym[t->nsym].name = xstrdup(name);
	t->sym[t->nsym].detail = detail ? xstrndup(detail, 200) : NULL;
	t->sym[t->nsym].score = 0;
	t->sym[t->nsym].conn = t->mail_from == NULL;
	t->nsym++;
}

void
txn_hdrop(struct txn *t, enum txn_hdrop_kind kind, const char *name,
    const char *value, int index)
{
	t->hdrop = xrealloc(t->hdrop, (t->nhdrop + 1) * sizeof(*t->hdrop));
	t->hdrop[t->nhdrop].kind = kind;
	t->hdrop[t->nhdrop].name = xstrdup(name);
	t->hdrop[t->nhdrop].value = value ? xstrdup(value) : NULL;
	t->hdrop[t->nhdrop].index = index;
	t->nhdrop++;
}

static void
txn_spf_clear(struct txn_spf *s)
{
	free(s->domain);
	free(s->identity);
	free(s->sender);
	free(s->reason);
	memset(s, 0, sizeof(*s));
}

/*
 * txn_clear_message - free everything that belongs to the current
 * message (called by the engine after the checks freed their state).
 */
void
txn_clear_message(struct txn *t)
{
	free(t->mail_from);
	t->mail_from = NULL;
	free(t->mail_domain);
	t->mail_domain = NULL;
	for (size_t i = 0; i < t->nrcpt; i++)
		free(t->rcpt[i]);
	free(t->rcpt);
	t->rcpt = NULL;
	t->nrcpt = 0;
	for (size_t i = 0; i < t->nhdr; i++) {
		free(t->hdr[i].name);
		free(t->hdr[i].value);
	}
	free(t->hdr);
	t->hdr = NULL;
	t->nhdr = 0;
	free(t->from_domain);
	t->from_domain = NULL;
	t->body_bytes = 0;
	txn_spf_clear(&t->spf);
	free(t->dmarc.from_domain);
	memset(&t->dmarc, 0, sizeof(t->dmarc));
	for (size_t i = 0; i < t->nhdrop; i++) {
		free(t->hdrop[i].name);
		free(t->hdrop[i].value);
	}
	free(t->hdrop);
	t->hdrop = NULL;
	t->nhdrop = 0;
	free(t->queue_id);
	t->queue_id = NULL;
	/* Keep connection-level symbols (iprev, HELO). */
	size_t keep = 0;
	for (size_t i = 0; i < t->nsym; i++) {
		if (t->sym[i].conn) {
			t->sym[keep++] = t->sym[i];
		} else {
			free(t->sym[i].name);
			free(t->sym[i].detail);
		}
	}
	t->nsym = keep;
	t->score = 0;
	memset(&t->verdict, 0, sizeof(t->verdict));
	t->logged = 0;
	if (t->accepted == 1) {
		t->accepted = 0;
		t->accepted_by[0] = '\0';
	}
}

/* txn_clear_all - free every field (the engine frees the struct). */
void
txn_clear_all(struct txn *t)
{
	txn_clear_message(t);
	for (size_t i = 0; i < t->nsym; i++) {
		free(t->sym[i].name);
		free(t->sym[i].detail);
	}
	free(t->sym);
	t->sym = NULL;
	t->nsym = 0;
	free(t->client_ip);
	free(t->client_name);
	free(t->helo);
	free(t->auth_user);
	free(t->tls_version);
	free(t->tls_cipher);
	free(t->our_hostname);
	free(t->iprev_name);
	txn_spf_clear(&t->spf_helo);
}
