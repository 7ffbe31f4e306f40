/*
 * proxy_msg.c - a spooled message at end of DATA: parse the header
 * block, run the engine's message stages over it, write it to the
 * backend with the engine's header edits.
 *
 * Called by proxy_session.c once the client's final "." has arrived.
 * The spool holds the message with the dot-stuffing removed and every
 * line ended by CRLF (the session refuses anything else), so line ends
 * here are always CRLF and the output can contain no bare CR or LF.
 * Header values the engine adds are re-folded: "\n" becomes CRLF and a
 * continuation line always starts with white space, so no edit can
 * start a new field or end the header block.
 *
 * Owns the parsed copy of the header block; one message, one worker at a time.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "engine.h"
#include "proxy_io.h"
#include "proxy_msg.h"
#include "proxy_spool.h"
#include "txn.h"
#include "util.h"

#define PROXY_MSG_CHUNK	65536

void
proxy_msg_free(struct proxy_msg *m)
{
	for (size_t i = 0; i < m->nf; i++)
		free(m->f[i].name);
	free(m->f);
	free(m->hdr);
	memset(m, 0, sizeof(*m));
}

/* proxy_msg_field_name_len - length of "name" in "name:" (RFC 5322
 * ftext: printable, no colon, no space), 0 when the line is no field. */
static size_t
proxy_msg_field_name_len(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ':')
			return i;
		if (c <= 0x20 || c >= 0x7f)
			return 0;
	}
	return 0;
}

static void
proxy_msg_add_field(struct proxy_msg *m, size_t off, size_t namelen)
{
	m->f = xrealloc(m->f, (m->nf + 1) * sizeof(*m->f));
	m->f[m->nf].off = off;
	m->f[m->nf].len = 0;
	m->f[m->nf].name = xstrndup(m->hdr + off, namelen);
	m->f[m->nf].deleted = 0;
	m->nf++;
}

int
proxy_msg_parse(struct proxy_msg *m, struct proxy_spool *sp, size_t max_hdr,
    char *why, size_t whylen)
{
	size_t want = max_hdr + 2 < sp->len ? max_hdr + 2 : sp->len;
	size_t pos = 0;
	ssize_t r;

	memset(m, 0, sizeof(*m));
	m->hdr = xmalloc(want + 1);
	while (m->hdr_len < want) {
		r = proxy_spool_read(sp, m->hdr_len, m->hdr + m->hdr_len,
		    want - m->hdr_len);
		if (r <= 0) {
			str_fmt(why, whylen, "451 4.3.0 Error reading the spooled"
			    " message");
			return -1;
		}
		m->hdr_len += (size_t)r;
	}
	m->hdr[m->hdr_len] = '\0';
	while (pos < m->hdr_len) {
		const char *s = m->hdr + pos;
		const char *nl = memchr(s, '\n', m->hdr_len - pos);
		size_t len, nlen;

		if (nl == NULL)
			break;		/* the limit cut this line */
		len = (size_t)(nl - s) + 1;
		if (len == 2) {		/* the empty line */
			m->rest_off = pos;
			m->body_off = pos + 2;
			m->hdr_len = pos;
			return 0;
		}
		if ((s[0] == ' ' || s[0] == '\t') && m->nf > 0) {
			m->f[m->nf - 1].len += len;
		} else if ((nlen = proxy_msg_field_name_len(s, len)) > 0) {
			proxy_msg_add_field(m, pos, nlen);
			m->f[m->nf - 1].len = len;
		} else {
			/* Not a header field: the body starts here. */
			m->rest_off = m->body_off = pos;
			m->hdr_len = pos;
			return 0;
		}
		pos += len;
	}
	if (pos == sp->len) {		/* headers only, no body */
		m->rest_off = m->body_off = pos;
		m->hdr_len = pos;
		return 0;
	}
	str_fmt(why, whylen, "552 5.3.4 Message header exceeds the limit of %zu"
	    " bytes", max_hdr);
	return -1;
}

/* proxy_msg_value - the field's value as the engine takes it: after the
 * colon, CRLF inside folded fields as "\n", no final CRLF. */
static char *
proxy_msg_value(const struct proxy_msg *m, const struct proxy_msg_field *f)
{
	const char *s = m->hdr + f->off + strlen(f->name) + 1;
	const char *end = m->hdr + f->off + f->len;
	char *v = xmalloc((size_t)(end - s) + 1), *o = v;

	for (; s < end; s++)
		if (*s != '\r')
			*o++ = *s;
	while (o > v && o[-1] == '\n')
		o--;
	*o = '\0';
	return v;
}

int
proxy_msg_eval(struct proxy_msg *m, struct txn *t, struct proxy_spool *sp,
    struct verdict *v)
{
	char *chunk;
	size_t off;
	ssize_t r;

	for (size_t i = 0; i < m->nf; i++) {
		char *val = proxy_msg_value(m, &m->f[i]);

		txn_add_header(t, m->f[i].name, val);
		free(val);
		/* An accepted (whitelisted) transaction still gives every
		 * header to the engine: forged ones are removed at EOM. */
		if (eng_event(t, TXN_EV_HEADER, v) != VERDICT_CONTINUE &&
		    v->action != VERDICT_ACCEPT)
			return v->action;
	}
	if (eng_event(t, TXN_EV_EOH, v) != VERDICT_CONTINUE &&
	    v->action != VERDICT_ACCEPT)
		return v->action;
	if (v->action == VERDICT_ACCEPT)
		return eng_event(t, TXN_EV_EOM, v);
	chunk = xmalloc(PROXY_MSG_CHUNK);
	for (off = m->body_off; off < sp->len; off += (size_t)r) {
		r = proxy_spool_read(sp, off, chunk, PROXY_MSG_CHUNK);
		if (r <= 0) {
			free(chunk);
			memset(v, 0, sizeof(*v));
			v->action = VERDICT_TEMPFAIL;
			str_copy(v->rcode, "451", sizeof(v->rcode));
			str_copy(v->xcode, "4.3.0", sizeof(v->xcode));
			str_copy(v->text, "Error reading the spooled message",
			    sizeof(v->text));
			return v->action;
		}
		/* An accept before the end still needs EOM for the headers:
		 * the body is not needed any more. */
		if (eng_body(t, (unsigned char *)chunk, (size_t)r, v) ==
		    VERDICT_ACCEPT)
			break;
		if (v->action != VERDICT_CONTINUE)
			break;
	}
	free(chunk);
	if (v->action != VERDICT_CONTINUE && v->action != VERDICT_ACCEPT)
		return v->action;
	return eng_event(t, TXN_EV_EOM, v);
}

void
proxy_msg_apply_deletes(struct proxy_msg *m, const struct txn *t)
{
	for (size_t k = 0; k < t->nhdrop; k++) {
		const struct txn_hdrop *op = &t->hdrop[k];
		int seen = 0;

		if (op->kind != TXN_HDR_DELETE)
			continue;
		for (size_t i = 0; i < m->nf; i++)
			if (strcasecmp(m->f[i].name, op->name) == 0 &&
			    ++seen == op->index) {
				m->f[i].deleted = 1;
				break;
			}
	}
}

/* The message writer: dot-stuffing for DATA (stuff), the content as it
 * is for BDAT; without io it only counts the size BDAT announces (the
 * spool's part without reading it). bol is set at the start of every
 * line. */
struct proxy_msg_out {
	struct proxy_io	*io;
	int		 stuff;
	int		 bol;
	int		 err;
	size_t		 n;		/* bytes written (or counted) */
};

static void
proxy_msg_put_raw(struct proxy_msg_out *o, const char *p, size_t n)
{
	if (o->io != NULL && !o->err && proxy_io_put(o->io, p, n) != 0)
		o->err = 1;
	o->n += n;
}

static void
proxy_msg_put(struct proxy_msg_out *o, const char *p, size_t n)
{
	while (n > 0 && !o->err) {
		const char *nl = memchr(p, '\n', n);
		size_t part = nl ? (size_t)(nl - p) + 1 : n;

		if (o->stuff && o->bol && p[0] == '.')
			proxy_msg_put_raw(o, ".", 1);
		proxy_msg_put_raw(o, p, part);
		o->bol = nl != NULL;
		p += part;
		n -= part;
	}
}

/* proxy_msg_put_field - "Name: value" from the engine, re-folded. */
static void
proxy_msg_put_field(struct proxy_msg_out *o, const char *name,
    const char *value)
{
	struct buf b;
	const char *v = value != NULL ? value : "";

	buf_init(&b, 1 << 20);
	buf_puts(&b, name);
	buf_puts(&b, ":");
	if (*v != ' ' && *v != '\t')
		buf_puts(&b, " ");
	for (; *v != '\0'; v++) {
		if (*v == '\r')
			continue;
		if (*v == '\n') {
			if (v[1] == '\0')
				break;
			buf_puts(&b, "\r\n");
			if (v[1] != ' ' && v[1] != '\t')
				buf_puts(&b, "\t");
			continue;
		}
		buf_append(&b, v, 1);
	}
	buf_puts(&b, "\r\n");
	proxy_msg_put(o, b.data, b.len);
	buf_free(&b);
}

static void
proxy_msg_put_inserts(struct proxy_msg_out *o, const struct txn *t, size_t at,
    int last)
{
	for (size_t k = 0; k < t->nhdrop; k++) {
		const struct txn_hdrop *op = &t->hdrop[k];
		size_t idx = op->index < 0 ? 0 : (size_t)op->index;

		if (op->kind == TXN_HDR_INSERT && (idx == at || (last && idx > at)))
			proxy_msg_put_field(o, op->name, op->value);
	}
}

/* proxy_msg_put_rest - the spooled part after the header, through o. */
static void
proxy_msg_put_rest(struct proxy_msg *m, struct proxy_spool *sp,
    struct proxy_msg_out *o)
{
	char *chunk = xmalloc(PROXY_MSG_CHUNK);
	ssize_t r;

	for (size_t off = m->rest_off; off < sp->len && !o->err; off += (size_t)r) {
		r = proxy_spool_read(sp, off, chunk, PROXY_MSG_CHUNK);
		if (r <= 0) {
			o->err = 1;
			break;
		}
		proxy_msg_put(o, chunk, (size_t)r);
	}
	free(chunk);
}

/* proxy_msg_count_rest - the same counted for BDAT, where it goes as it
 * is: its size is the spool's, and only its last byte is read (does it
 * end a line?). */
static void
proxy_msg_count_rest(struct proxy_msg *m, struct proxy_spool *sp,
    struct proxy_msg_out *o)
{
	char last = '\n';

	if (sp->len <= m->rest_off)
		return;
	if (proxy_spool_read(sp, sp->len - 1, &last, 1) != 1)
		o->err = 1;
	o->n += sp->len - m->rest_off;
	o->bol = last == '\n';
}

/* proxy_msg_emit - the message as the backend gets it, through o. */
static void
proxy_msg_emit(struct proxy_msg *m, const struct txn *t,
    struct proxy_spool *sp, struct proxy_msg_out *o)
{
	o->bol = 1;
	for (size_t i = 0; i < m->nf; i++) {
		proxy_msg_put_inserts(o, t, i, 0);
		if (!m->f[i].deleted)
			proxy_msg_put(o, m->hdr + m->f[i].off, m->f[i].len);
	}
	proxy_msg_put_inserts(o, t, m->nf, 1);
	for (size_t k = 0; k < t->nhdrop; k++)
		if (t->hdrop[k].kind == TXN_HDR_ADD)
			proxy_msg_put_field(o, t->hdrop[k].name, t->hdrop[k].value);
	if (o->io == NULL && !o->stuff)
		proxy_msg_count_rest(m, sp, o);
	else
		proxy_msg_put_rest(m, sp, o);
	/* Every spooled line ends with CRLF; a message cut by a header
	 * limit or empty still gets a line end at its end. */
	if (!o->bol)
		proxy_msg_put(o, "\r\n", 2);
}

int
proxy_msg_write(struct proxy_msg *m, const struct txn *t,
    struct proxy_spool *sp, struct proxy_io *io)
{
	struct proxy_msg_out o = { .io = io, .stuff = 1 };

	proxy_msg_apply_deletes(m, t);
	proxy_msg_emit(m, t, sp, &o);
	proxy_msg_put_raw(&o, ".\r\n", 3);
	return o.err ? -1 : 0;
}

int
proxy_msg_write_bdat(struct proxy_msg *m, const struct txn *t,
    struct proxy_spool *sp, struct proxy_io *io)
{
	struct proxy_msg_out count = { .io = NULL }, o = { .io = io };

	proxy_msg_apply_deletes(m, t);
	proxy_msg_emit(m, t, sp, &count);
	if (count.err || proxy_io_printf(io, "BDAT %zu LAST\r\n", count.n) != 0)
		return -1;
	proxy_msg_emit(m, t, sp, &o);
	/* The spool cannot change in between: a size that differs would
	 * frame the next command wrongly, so it is checked. */
	return o.err || o.n != count.n ? -1 : 0;
}
