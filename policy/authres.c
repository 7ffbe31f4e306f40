/*
 * authres.c - build Authentication-Results and X-Spam-Status values.
 *
 * Called by the engine at end of message. Every value that came from a
 * peer (addresses, domains, HELO) is emitted as an RFC 8601 token or a
 * quoted-string, with control characters replaced, so a hostile sender
 * cannot inject header syntax.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres.h"
#include "buf.h"
#include "util.h"

#define AR_MAX	16384	/* bytes of one header value */

/* RFC 2045 token characters: printable ASCII minus tspecials. */
static int
ar_tokenchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

void
authres_value(struct buf *b, const char *v)
{
	int token = *v != '\0';

	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (!ar_tokenchar(*p) && *p != '@' && *p != '/')
			token = 0;
	/* RFC 8601 §2.3 allows a bare local-part@domain-name as pvalue;
	 * '@' and '/' are fine there too, but a leading '@' is not. */
	if (token && v[0] != '@') {
		buf_puts(b, v);
		return;
	}
	buf_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			buf_puts(b, "?");
		else
			buf_append(b, p, 1);
	}
	buf_puts(b, "\"");
}

/* ar_comment - " (text)" with parentheses and controls made harmless. */
static void
ar_comment(struct buf *b, const char *text)
{
	if (text == NULL || *text == '\0')
		return;
	buf_puts(b, " (");
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '(' || *p == ')' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			buf_puts(b, " ");
		else
			buf_append(b, p, 1);
	}
	buf_puts(b, ")");
}

static void
ar_prop(struct buf *b, const char *name, const char *value)
{
	if (value == NULL || *value == '\0')
		return;
	buf_printf(b, " %s=", name);
	authres_value(b, value);
}

static void
ar_sep(struct buf *b)
{
	buf_puts(b, ";\n\t");
}

char *
authres_build(const struct txn *t, const char *authserv_id)
{
	struct buf b;
	int any = 0;

	buf_init(&b, AR_MAX);
	authres_value(&b, authserv_id);
	if (t->client_ip != NULL && t->iprev != CHK_NONE) {
		/* RFC 8601 iprev has no "none": omitted when not evaluated. */
		ar_sep(&b);
		buf_printf(&b, "iprev=%s", chk_res_name(t->iprev));
		ar_comment(&b, t->iprev_name);
		ar_prop(&b, "policy.iprev", t->client_ip);
		any = 1;
	}
	if (t->spf.identity != NULL) {
		ar_sep(&b);
		buf_printf(&b, "spf=%s", chk_res_name(t->spf.res));
		ar_comment(&b, t->spf.reason);
		if (strcmp(t->spf.identity, "helo") == 0)
			ar_prop(&b, "smtp.helo", t->helo);
		else
			ar_prop(&b, "smtp.mailfrom", t->spf.sender);
		any = 1;
	}
	if (t->ndkim == 0 && t->spf.identity != NULL) {
		ar_sep(&b);
		buf_puts(&b, "dkim=none");
	}
	for (size_t i = 0; i < t->ndkim; i++) {
		const struct txn_dkim_sig *d = &t->dkim[i];
		ar_sep(&b);
		buf_printf(&b, "dkim=%s", chk_res_name(d->res));
		ar_comment(&b, d->reason);
		ar_prop(&b, "header.d", d->domain);
		ar_prop(&b, "header.s", d->selector);
		ar_prop(&b, "header.a", d->algorithm);
		ar_prop(&b, "header.b", d->b);
		any = 1;
	}
	if (t->dmarc.from_domain != NULL || t->dmarc.res != CHK_NONE) {
		char c[64];
		ar_sep(&b);
		buf_printf(&b, "dmarc=%s", chk_res_name(t->dmarc.res));
		if (t->dmarc.policy[0] != '\0' && t->dmarc.res != CHK_NONE) {
			str_fmt(c, sizeof(c), "p=%s dis=%s", t->dmarc.policy,
			    t->dmarc.disposition[0] ? t->dmarc.disposition : "none");
			ar_comment(&b, c);
		}
		ar_prop(&b, "header.from", t->dmarc.from_domain);
		any = 1;
	}
	if (!any)
		buf_puts(&b, "; none");
	char *out = xstrdup(b.data ? b.data : "");
	buf_free(&b);
	return out;
}

/* ar_skip_cfws - skip white space and (nested) comments. */
static const char *
ar_skip_cfws(const char *s)
{
	int depth = 0, guard = 0;

	while (*s && guard++ < 100000) {
		if (depth == 0 && isspace((unsigned char)*s)) {
			s++;
		} else if (*s == '(') {
			depth++;
			s++;
		} else if (depth > 0 && *s == ')') {
			depth--;
			s++;
		} else if (depth > 0 && *s == '\\' && s[1]) {
			s += 2;
		} else if (depth > 0) {
			s++;
		} else {
			break;
		}
	}
	return s;
}

int
authres_is_ours(const char *value, const char *authserv_id)
{
	const char *s = ar_skip_cfws(value);
	size_t n, idlen = strlen(authserv_id);

	if (*s == '"') {
		/* A quoted authserv-id: compare its content. */
		const char *e = strchr(s + 1, '"');
		if (e == NULL)
			return 0;
		n = (size_t)(e - s - 1);
		return n == idlen && strncasecmp(s + 1, authserv_id, n) == 0;
	}
	n = strcspn(s, " \t\r\n;(");
	return n == idlen && strncasecmp(s, authserv_id, n) == 0;
}

static int
ar_strcmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
authres_spam_status(const struct txn *t, double required, int is_spam)
{
	struct buf b;
	const char **names = xcalloc(t->nsym + 1, sizeof(*names));

	for (size_t i = 0; i < t->nsym; i++)
		names[i] = t->sym[i].name;
	if (t->nsym > 1)
		qsort(names, t->nsym, sizeof(*names), ar_strcmp);
	buf_init(&b, AR_MAX);
	buf_printf(&b, "%s, score=%.1f", is_spam ? "Yes" : "No", t->score);
	if (required < 0)
		buf_puts(&b, " required=none");
	else
		buf_printf(&b, " required=%.1f", required);
	buf_puts(&b, " tests=");
	size_t linelen = b.len;
	for (size_t i = 0; i < t->nsym; i++) {
		if (i > 0) {
			buf_puts(&b, ",");
			/* Fold like SpamAssassin: keep lines under ~78. */
			if (b.len - linelen + strlen(names[i]) > 70) {
				buf_puts(&b, "\n\t");
				linelen = b.len;
			}
		}
		buf_puts(&b, names[i]);
	}
	if (t->nsym == 0)
		buf_puts(&b, "NONE");
	free(names);
	char *out = xstrdup(b.data ? b.data : "");
	buf_free(&b);
	return out;
}
