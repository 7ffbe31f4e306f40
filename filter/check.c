/*
 * check.c - the offline front end: `mxwarden check`.
 *
 * Reads an RFC 5322 message (LF or CRLF line ends) from a stream, plays
 * the SMTP stages through the engine as an MTA would (connect, HELO,
 * MAIL, RCPT, headers, body, end of message), stops where the daemon
 * would stop (a reject at MAIL ends the transaction there), and prints
 * every check result, every symbol with its score, the thresholds, the
 * final action and the header edits. Single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "check.h"
#include "config.h"
#include "engine.h"
#include "rules.h"
#include "util.h"

#define CHECK_MAX_MESSAGE	(64u << 20)
#define CHECK_BODY_CHUNK	65536

/* check_read_all - the whole stream, bounded. */
static int
check_read_all(FILE *in, struct buf *b)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		if (buf_append(b, chunk, n) != 0)
			return -1;
	return ferror(in) ? -1 : 0;
}

/* Line iterator over the message: returns the line without its end,
 * or NULL at the end; *len is its length. */
struct check_lines {
	const char	*p, *end;
};

static const char *
check_next_line(struct check_lines *l, size_t *len)
{
	const char *s = l->p, *nl;

	if (s >= l->end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(l->end - s));
	if (nl == NULL) {
		*len = (size_t)(l->end - s);
		l->p = l->end;
	} else {
		*len = (size_t)(nl - s);
		l->p = nl + 1;
	}
	if (*len > 0 && s[*len - 1] == '\r')
		(*len)--;
	return s;
}

struct check_state {
	struct txn	*t;
	struct verdict	 v;
	const char	*stage;
	enum verdict_action a;
};

/* check_step - run one event; non-zero when the transaction ended. */
static int
check_step(struct check_state *s, enum txn_event ev, const char *stage)
{
	s->a = eng_event(s->t, ev, &s->v);
	s->stage = stage;
	return s->a != VERDICT_CONTINUE;
}

/* check_headers - feed the header section; returns the body start. */
static const char *
check_headers(struct check_state *s, struct check_lines *l, int *ended)
{
	struct buf name, value;
	const char *line;
	size_t len;

	buf_init(&name, 1000);
	buf_init(&value, 1 << 20);
	*ended = 0;
	for (;;) {
		const char *before = l->p;
		line = check_next_line(l, &len);
		int cont = line && len > 0 && (line[0] == ' ' || line[0] == '\t');
		if (cont && name.len > 0) {
			/* Folded: MTAs hand milters "\n" + the white space. */
			buf_puts(&value, "\n");
			buf_append(&value, line, len);
			continue;
		}
		if (name.len > 0) {
			txn_add_header(s->t, name.data, value.data ? value.data : "");
			if (check_step(s, TXN_EV_HEADER, "header")) {
				*ended = 1;
				break;
			}
			buf_reset(&name);
			buf_reset(&value);
		}
		if (line == NULL || len == 0)
			break;
		const char *colon = memchr(line, ':', len);
		if (colon == NULL || colon == line || cont) {
			/* Not a header: the body starts here (as Postfix does). */
			l->p = before;
			break;
		}
		buf_append(&name, line, (size_t)(colon - line));
		buf_append(&value, colon + 1, len - (size_t)(colon - line) - 1);
		if (value.data == NULL)
			buf_puts(&value, "");
	}
	buf_free(&name);
	buf_free(&value);
	return l->p;
}

/* check_body - feed the body with CRLF line ends, in chunks. */
static void
check_body(struct check_state *s, struct check_lines *l)
{
	struct buf chunk;
	const char *line;
	size_t len;

	buf_init(&chunk, CHECK_BODY_CHUNK + 1024);
	while ((line = check_next_line(l, &len)) != NULL) {
		while (len > 0) {
			size_t part = len > 1000 ? 1000 : len;
			buf_append(&chunk, line, part);
			line += part;
			len -= part;
			if (chunk.len >= CHECK_BODY_CHUNK) {
				eng_body(s->t, (const unsigned char *)chunk.data,
				    chunk.len, &s->v);
				buf_reset(&chunk);
			}
		}
		buf_append(&chunk, "\r\n", 2);
	}
	if (chunk.len > 0)
		eng_body(s->t, (const unsigned char *)chunk.data, chunk.len, &s->v);
	buf_free(&chunk);
}

/* check_from_header_addr - the envelope sender to use when none given. */
static void
check_default_from(struct txn *t, struct check_lines l, struct buf *out)
{
	const char *line;
	size_t len;

	while ((line = check_next_line(&l, &len)) != NULL && len > 0) {
		if (len > 5 && strncasecmp(line, "From:", 5) == 0) {
			const char *lt = memchr(line, '<', len);
			const char *gt = lt ? memchr(lt, '>', len - (size_t)(lt - line)) : NULL;
			if (lt && gt)
				buf_append(out, lt + 1, (size_t)(gt - lt - 1));
			else
				buf_append(out, line + 5, len - 5);
			return;
		}
	}
	(void)t;
}

/* check_play - the SMTP stages, stopping where the daemon would. */
static void
check_play(struct check_state *s, const struct check_args *a,
    const struct buf *msg)
{
	struct check_lines l = { msg->data ? msg->data : "",
		(msg->data ? msg->data : "") + msg->len };
	struct buf from;
	int ended;

	txn_set_client(s->t, a->ip ? a->ip : "127.0.0.1", a->port, a->client_name);
	if (check_step(s, TXN_EV_CONNECT, "connect"))
		return;
	if (a->helo != NULL) {
		txn_set_helo(s->t, a->helo);
		if (check_step(s, TXN_EV_HELO, "helo"))
			return;
	}
	txn_set_auth(s->t, a->auth);
	if (a->tls != NULL) {
		/* "TLSv1.3 TLS_AES_256_GCM_SHA384": version, then cipher. */
		char version[64];
		size_t n = strcspn(a->tls, " ");

		str_copy(version, a->tls, n < sizeof(version) ? n + 1 :
		    sizeof(version));
		txn_set_tls(s->t, version, a->tls[n] == ' ' ? a->tls + n + 1 : NULL);
	}
	if (a->from != NULL) {
		txn_set_mail(s->t, a->from);
	} else {
		buf_init(&from, 1024);
		check_default_from(s->t, l, &from);
		txn_set_mail(s->t, from.data ? from.data : "");
		buf_free(&from);
	}
	if (check_step(s, TXN_EV_MAIL, "mail"))
		return;
	for (size_t i = 0; i < a->nrcpt; i++) {
		txn_add_rcpt(s->t, a->rcpt[i]);
		if (check_step(s, TXN_EV_RCPT, "rcpt"))
			return;
	}
	if (check_step(s, TXN_EV_DATA, "data"))
		return;
	check_headers(s, &l, &ended);
	if (ended)
		return;
	if (check_step(s, TXN_EV_EOH, "eoh"))
		return;
	check_body(s, &l);
	check_step(s, TXN_EV_EOM, "eom");
}

/* JSON output ------------------------------------------------------ */

static void
json_str(FILE *out, const char *s)
{
	if (s == NULL) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void
json_spf(FILE *out, const struct txn_spf *s)
{
	fprintf(out, "{\"result\":\"%s\",\"identity\":", chk_res_name(s->res));
	json_str(out, s->identity);
	fputs(",\"domain\":", out);
	json_str(out, s->domain);
	fputs(",\"sender\":", out);
	json_str(out, s->sender);
	fputs(",\"reason\":", out);
	json_str(out, s->reason);
	fputs("}", out);
}

static const char *
hdrop_name(enum txn_hdrop_kind k)
{
	return k == TXN_HDR_INSERT ? "insert" : k == TXN_HDR_ADD ? "add" : "delete";
}

static void
check_print_json(const struct check_state *s, FILE *out)
{
	const struct txn *t = s->t;
	const struct rules *r = eng_rules(t);
	static const char *const thr[RT_COUNT] = { "add_header", "quarantine",
		"tempfail", "reject" };

	fputs("{\"client\":{\"ip\":", out);
	json_str(out, t->client_ip);
	fputs(",\"helo\":", out);
	json_str(out, t->helo);
	fprintf(out, ",\"internal\":%s},\"envelope\":{\"from\":",
	    t->client_internal ? "true" : "false");
	json_str(out, t->mail_from);
	fputs(",\"rcpt\":[", out);
	for (size_t i = 0; i < t->nrcpt; i++) {
		fputs(i ? "," : "", out);
		json_str(out, t->rcpt[i]);
	}
	fprintf(out, "]},\"checks\":{\"iprev\":{\"result\":\"%s\",\"name\":",
	    chk_res_name(t->iprev));
	json_str(out, t->iprev_name);
	fputs("},\"spf\":", out);
	json_spf(out, &t->spf);
	fputs(",\"spf_helo\":", out);
	json_spf(out, &t->spf_helo);
	fputs(",\"dkim\":[", out);
	for (size_t i = 0; i < t->ndkim; i++) {
		const struct txn_dkim_sig *d = &t->dkim[i];
		fprintf(out, "%s{\"result\":\"%s\",\"d\":", i ? "," : "",
		    chk_res_name(d->res));
		json_str(out, d->domain);
		fputs(",\"s\":", out);
		json_str(out, d->selector);
		fputs(",\"a\":", out);
		json_str(out, d->algorithm);
		fputs(",\"b\":", out);
		json_str(out, d->b);
		fputs(",\"reason\":", out);
		json_str(out, d->reason);
		fputs("}", out);
	}
	fprintf(out, "],\"dmarc\":{\"result\":\"%s\",\"from_domain\":",
	    chk_res_name(t->dmarc.res));
	json_str(out, t->dmarc.from_domain);
	fputs(",\"policy\":", out);
	json_str(out, t->dmarc.policy);
	fputs(",\"disposition\":", out);
	json_str(out, t->dmarc.disposition);
	fputs("}},\"symbols\":[", out);
	for (size_t i = 0; i < t->nsym; i++) {
		fprintf(out, "%s{\"name\":", i ? "," : "");
		json_str(out, t->sym[i].name);
		fprintf(out, ",\"score\":%.3f,\"detail\":", t->sym[i].score);
		json_str(out, t->sym[i].detail);
		fputs("}", out);
	}
	fprintf(out, "],\"score\":%.3f,\"thresholds\":{", t->score);
	int first = 1;
	for (int i = 0; i < RT_COUNT; i++) {
		int set;
		double v = rules_threshold(r, (enum rules_threshold)i, &set, NULL);
		if (set) {
			fprintf(out, "%s\"%s\":%.3f", first ? "" : ",", thr[i], v);
			first = 0;
		}
	}
	fprintf(out, "},\"stage\":\"%s\",\"action\":\"%s\",\"decided_by\":",
	    s->stage, verdict_name(s->v.action));
	json_str(out, s->v.symbol[0] ? s->v.symbol : NULL);
	fputs(",\"reply\":", out);
	if (s->v.rcode[0]) {
		fprintf(out, "{\"code\":\"%s\",\"xcode\":\"%s\",\"text\":", s->v.rcode,
		    s->v.xcode);
		json_str(out, s->v.text);
		fputs("}", out);
	} else {
		fputs("null", out);
	}
	fputs(",\"headers\":[", out);
	for (size_t i = 0; i < t->nhdrop; i++) {
		fprintf(out, "%s{\"op\":\"%s\",\"name\":", i ? "," : "",
		    hdrop_name(t->hdrop[i].kind));
		json_str(out, t->hdrop[i].name);
		fprintf(out, ",\"index\":%d,\"value\":", t->hdrop[i].index);
		json_str(out, t->hdrop[i].value);
		fputs("}", out);
	}
	fputs("]}\n", out);
}

/* Text output ------------------------------------------------------ */

static void
check_print_spf(FILE *out, const char *label, const struct txn_spf *s)
{
	fprintf(out, "  %-10s %s", label, chk_res_name(s->res));
	if (s->sender)
		fprintf(out, " %s", s->sender);
	if (s->reason)
		fprintf(out, " (%s)", s->reason);
	fputc('\n', out);
}

static void
check_print_text(const struct check_state *s, FILE *out)
{
	const struct txn *t = s->t;
	const struct rules *r = eng_rules(t);
	static const char *const thr[RT_COUNT] = { "add_header", "quarantine",
		"tempfail", "reject" };

	fprintf(out, "client     %s%s helo=%s\n", t->client_ip,
	    t->client_internal ? " (internal)" : "", t->helo ? t->helo : "(none)");
	fprintf(out, "envelope   from=<%s>", t->mail_from ? t->mail_from : "");
	for (size_t i = 0; i < t->nrcpt; i++)
		fprintf(out, " rcpt=<%s>", t->rcpt[i]);
	fputs("\nchecks\n", out);
	fprintf(out, "  %-10s %s%s%s%s\n", "iprev", chk_res_name(t->iprev),
	    t->iprev_name ? " (" : "", t->iprev_name ? t->iprev_name : "",
	    t->iprev_name ? ")" : "");
	check_print_spf(out, "spf-helo", &t->spf_helo);
	check_print_spf(out, "spf", &t->spf);
	if (t->ndkim == 0)
		fprintf(out, "  %-10s none\n", "dkim");
	for (size_t i = 0; i < t->ndkim; i++)
		fprintf(out, "  %-10s %s d=%s s=%s a=%s%s%s%s\n", "dkim",
		    chk_res_name(t->dkim[i].res),
		    t->dkim[i].domain ? t->dkim[i].domain : "?",
		    t->dkim[i].selector ? t->dkim[i].selector : "?",
		    t->dkim[i].algorithm ? t->dkim[i].algorithm : "?",
		    t->dkim[i].reason ? " (" : "",
		    t->dkim[i].reason ? t->dkim[i].reason : "",
		    t->dkim[i].reason ? ")" : "");
	fprintf(out, "  %-10s %s", "dmarc", chk_res_name(t->dmarc.res));
	if (t->dmarc.from_domain)
		fprintf(out, " header.from=%s p=%s dis=%s", t->dmarc.from_domain,
		    t->dmarc.policy[0] ? t->dmarc.policy : "-",
		    t->dmarc.disposition[0] ? t->dmarc.disposition : "-");
	fputs("\nsymbols\n", out);
	for (size_t i = 0; i < t->nsym; i++)
		fprintf(out, "  %-24s %6.2f  %s\n", t->sym[i].name, t->sym[i].score,
		    t->sym[i].detail ? t->sym[i].detail : "");
	fprintf(out, "score      %.2f", t->score);
	for (int i = 0; i < RT_COUNT; i++) {
		int set;
		double v = rules_threshold(r, (enum rules_threshold)i, &set, NULL);
		if (set)
			fprintf(out, "  %s>=%.1f", thr[i], v);
	}
	fprintf(out, "\naction     %s at %s", verdict_name(s->v.action), s->stage);
	if (s->v.symbol[0])
		fprintf(out, " by %s", s->v.symbol);
	if (s->v.rcode[0])
		fprintf(out, ": %s %s %s", s->v.rcode, s->v.xcode, s->v.text);
	fputc('\n', out);
	if (t->nhdrop > 0)
		fputs("headers\n", out);
	for (size_t i = 0; i < t->nhdrop; i++) {
		const struct txn_hdrop *h = &t->hdrop[i];
		if (h->kind == TXN_HDR_DELETE)
			fprintf(out, "  - %s #%d\n", h->name, h->index);
		else
			fprintf(out, "  + %s: %s\n", h->name, h->value);
	}
}

int
check_run(struct eng *e, const struct check_args *a, FILE *in, FILE *out)
{
	struct check_state s = { .stage = "connect" };
	struct buf msg;
	int rc;

	buf_init(&msg, CHECK_MAX_MESSAGE);
	if (check_read_all(in, &msg) != 0) {
		fprintf(stderr, "mxwarden check: cannot read the message "
		    "(unreadable or larger than %u bytes)\n", CHECK_MAX_MESSAGE);
		buf_free(&msg);
		return 3;
	}
	s.t = eng_txn_new(e);
	check_play(&s, a, &msg);
	if (a->json)
		check_print_json(&s, out);
	else
		check_print_text(&s, out);
	switch (s.v.action) {
	case VERDICT_REJECT:
	case VERDICT_DISCARD:
		rc = 1;
		break;
	case VERDICT_TEMPFAIL:
		rc = 2;
		break;
	default:
		rc = 0;
	}
	eng_txn_free(s.t);
	buf_free(&msg);
	return rc;
}
