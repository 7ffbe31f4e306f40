/*
 * mime.c - streaming MIME decoder for the body targets of content rules
 * (see mime.h for what it collects and its bounds).
 *
 * Called by the engine (policy/engine.c) at end of headers, for each
 * body chunk and at end of message; read by policy/rules.c. It owns the
 * decoder state and the buffers of one message. The body is cut into
 * lines; a stack of multipart boundaries decides where parts start and
 * end; each leaf part's body is decoded into a part buffer, which at the
 * end of the part is converted to UTF-8, stripped of HTML if needed and
 * appended to the message text.
 *
 * Thread safety: one decoder per transaction; the only shared state is
 * the index of HTML's named references, built once (pthread_once) and
 * read-only after.
 * Security: all input is hostile; every buffer has a hard maximum and
 * malformed input only sets MIME_F_BROKEN.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>

#include "buf.h"
#include "mime.h"
#include "util.h"

#define MIME_MAX_PART_HDRS	16384
#define MIME_MAX_PARAM		256

enum mime_state { MS_HEADERS, MS_BODY, MS_SKIP };
enum mime_enc { ME_PLAIN, ME_QP, ME_B64 };

struct mime {
	size_t		 max;
	struct buf	 raw;
	struct buf	 text;
	struct buf	 line;		/* the current unfinished line */
	struct buf	 hdrs;		/* headers of the current part */
	struct buf	 part;		/* decoded body of the current leaf */
	char		*bnd[MIME_MAX_DEPTH];
	int		 nbnd;
	int		 nested;	/* message/rfc822 levels entered */
	enum mime_state	 state;
	enum mime_enc	 enc;
	int		 leaf_text;	/* current leaf goes to text */
	int		 leaf_html;
	char		 charset[64];
	unsigned	 b64_acc;
	int		 b64_bits;
	char		*att_name[MIME_MAX_ATTACH];
	char		*att_type[MIME_MAX_ATTACH];
	size_t		 natt;
	int		 flags;
};

/*
 * mime_hdr_get - the unfolded value of header name in a block of
 * "Name: value\n" lines (first occurrence), into out. 0 or -1.
 */
static int
mime_hdr_get(const char *block, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), o = 0;
	const char *s = block;

	while (*s) {
		if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
			s += nl + 1;
			for (;;) {
				while (*s && *s != '\n') {
					if (*s != '\r' && o + 1 < outlen)
						out[o++] = *s == '\t' ? ' ' : *s;
					s++;
				}
				if (*s == '\n' && (s[1] == ' ' || s[1] == '\t')) {
					s++;
					continue;
				}
				break;
			}
			out[o] = '\0';
			return 0;
		}
		s = strchr(s, '\n');
		if (s == NULL)
			break;
		s++;
	}
	return -1;
}

/* mime_param - parameter attr of a "type/sub; a=b; c=\"d\"" value into
 * out; also RFC 2231 "attr*=charset'lang'%XX" and "attr*0=" (first
 * piece only). 0 or -1. */
static int
mime_param(const char *value, const char *attr, char *out, size_t outlen)
{
	size_t al = strlen(attr);
	const char *s = value;

	while ((s = strchr(s, ';')) != NULL) {
		s++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (strncasecmp(s, attr, al) != 0)
			continue;
		const char *p = s + al;
		int ext = 0;
		if (p[0] == '*' && p[1] == '=') {
			ext = 1;
			p += 1;
		} else if (strncmp(p, "*0*=", 4) == 0) {
			ext = 1;
			p += 3;
		} else if (strncmp(p, "*0=", 3) == 0) {
			p += 2;
		}
		while (*p == ' ')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ')
			p++;
		size_t o = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (o + 1 < outlen)
					out[o++] = *p;
			}
		} else {
			for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++)
				if (o + 1 < outlen)
					out[o++] = *p;
		}
		out[o] = '\0';
		if (ext) {
			/* charset'lang'percent-encoded: decode, keep bytes
			 * (the caller converts if it knows the charset). */
			char *q1 = strchr(out, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
			char *src = q2 ? q2 + 1 : out, *d = out;
			for (; *src; src++) {
				if (*src == '%' && isxdigit((unsigned char)src[1]) &&
				    isxdigit((unsigned char)src[2])) {
					char hx[3] = { src[1], src[2], 0 };
					*d++ = (char)strtol(hx, NULL, 16);
					src += 2;
				} else {
					*d++ = *src;
				}
			}
			*d = '\0';
		}
		return 0;
	}
	return -1;
}

int
mime_to_utf8(const char *charset, const char *in, size_t len, void *out)
{
	struct buf *b = out;
	char cs[64];

	str_copy(cs, charset ? charset : "", sizeof(cs));
	str_lower(cs);
	if (cs[0] == '\0' || strcmp(cs, "us-ascii") == 0 ||
	    strcmp(cs, "utf-8") == 0 || strcmp(cs, "utf8") == 0 ||
	    strcmp(cs, "ascii") == 0)
		return buf_append(b, in, len);
	iconv_t cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return buf_append(b, in, len);	/* unknown: bytes as they are */
	char *ip = (char *)in;
	size_t il = len;
	int rc = 0;
	while (il > 0 && rc == 0) {
		char chunk[4096], *op = chunk;
		size_t ol = sizeof(chunk);
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		int e = errno;
		if (buf_append(b, chunk, sizeof(chunk) - ol) != 0)
			rc = -1;
		if (r != (size_t)-1)
			break;
		if (e == E2BIG)
			continue;
		/* EILSEQ or a truncated sequence at the end: one '?' and on. */
		if (buf_append(b, "?", 1) != 0)
			rc = -1;
		ip++;
		il--;
	}
	iconv_close(cd);
	return rc;
}

#define MIME_TAG_NAME	16	/* longer than any name looked at */

/*
 * mime_html_tag_name - the tag at in[0..len) (in[0] is '<'): '<' or
 * '</', a letter, then its name up to a space, '/' or '>' (HTML's
 * tokenizer). name gets the letters, digits and ':' it starts with, in
 * lower case ("" when they are longer than any name looked at); *exact
 * is set when they are the whole name (<script>, not <script-x>),
 * *closing for '</'. Returns where the name ends, 0 when it is no tag
 * with a name ("<!--", "< x", "<3").
 */
static size_t
mime_html_tag_name(const char *in, size_t len, char name[MIME_TAG_NAME],
    int *exact, int *closing)
{
	size_t i = 1, k = 0;

	*closing = i < len && in[i] == '/';
	i += (size_t)*closing;
	name[0] = '\0';
	*exact = 0;
	if (i >= len || !isalpha((unsigned char)in[i]))
		return 0;
	while (i < len && (isalnum((unsigned char)in[i]) || in[i] == ':')) {
		if (k < MIME_TAG_NAME)
			name[k] = (char)tolower((unsigned char)in[i]);
		k++;
		i++;
	}
	name[k < MIME_TAG_NAME ? k : 0] = '\0';
	*exact = k < MIME_TAG_NAME && (i == len || isspace((unsigned char)in[i]) ||
	    in[i] == '/' || in[i] == '>');
	while (i < len && !isspace((unsigned char)in[i]) && in[i] != '/' &&
	    in[i] != '>')
		i++;
	return i;
}

/*
 * mime_html_breaks - whether a tag of element name (lower case) ends a
 * word as a browser shows it: block tags (p, div, br, td, ...) and
 * unknown ones do; inline tags (b, span, font, a, ...) do not, so that
 * "<b>Vi</b>agra" reads "Viagra", as the reader sees it.
 */
static int
mime_html_breaks(const char *name)
{
	static const char *const inl[] = {
		"a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code",
		"del", "dfn", "em", "font", "i", "ins", "kbd", "mark", "o:p", "q",
		"s", "samp", "small", "span", "strike", "strong", "sub", "sup",
		"tt", "u", "var", "wbr",
	};

	for (size_t j = 0; j < ARRAY_LEN(inl); j++)
		if (strcmp(name, inl[j]) == 0)
			return 0;
	return 1;
}

/* The named character references of HTML 4: libxml2's table, indexed
 * by name once (libxml2 itself looks a name up by a linear scan). */
#define MIME_ENT_MAX	512
#define MIME_ENT_NAME	8	/* the longest HTML 4 name ("thetasym") */

static const htmlEntityDesc *mime_ent[MIME_ENT_MAX];
static size_t mime_nent;
static pthread_once_t mime_ent_once = PTHREAD_ONCE_INIT;

static int
mime_ent_cmp(const void *a, const void *b)
{
	return strcmp((*(const htmlEntityDesc *const *)a)->name,
	    (*(const htmlEntityDesc *const *)b)->name);
}

/* mime_ent_init - every entity of the table, found by its code point
 * (all lie below U+2700), sorted by name. */
static void
mime_ent_init(void)
{
	for (unsigned int cp = 1; cp < 0x2700 && mime_nent < MIME_ENT_MAX; cp++) {
		const htmlEntityDesc *d = htmlEntityValueLookup(cp);

		if (d != NULL && d->value == cp)
			mime_ent[mime_nent++] = d;
	}
	qsort(mime_ent, mime_nent, sizeof(mime_ent[0]), mime_ent_cmp);
}

/* mime_ent_lookup - the code point of the named reference name, or -1. */
static long
mime_ent_lookup(const char *name)
{
	htmlEntityDesc key = { .name = name };
	const htmlEntityDesc *k = &key, *const *hit;

	pthread_once(&mime_ent_once, mime_ent_init);
	hit = bsearch(&k, mime_ent, mime_nent, sizeof(mime_ent[0]), mime_ent_cmp);
	return hit != NULL ? (long)(*hit)->value : -1;
}

/*
 * mime_html_ref - the character reference at in[0..len) (in[0] is '&'):
 * &name; (HTML 4's names; in another case too, "&NBSP;"), &#N; or &#xH;.
 * Returns its code point and sets *n to its length, or -1 when there is
 * none there (the '&' is text).
 */
static long
mime_html_ref(const char *in, size_t len, size_t *n)
{
	char name[MIME_ENT_NAME + 1];
	size_t j = 1, k = 0;
	long cp = 0;

	if (j < len && in[j] == '#') {
		int hex = j + 1 < len && (in[j + 1] == 'x' || in[j + 1] == 'X');
		size_t d0 = j += hex ? 2 : 1;

		/* At most 7 digits: U+10FFFF is 1114111. */
		while (j < len && j - d0 < 7 && (hex ? isxdigit((unsigned char)in[j]) :
		    isdigit((unsigned char)in[j]))) {
			int d = (unsigned char)in[j];

			cp = cp * (hex ? 16 : 10) + (isdigit(d) ? d - '0' :
			    tolower(d) - 'a' + 10);
			j++;
		}
		if (j == d0 || j >= len || in[j] != ';' || cp == 0 ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		*n = j + 1;
		return cp;
	}
	while (j < len && k < MIME_ENT_NAME && isalnum((unsigned char)in[j]))
		name[k++] = in[j++];
	if (k == 0 || j >= len || in[j] != ';')
		return -1;
	name[k] = '\0';
	if ((cp = mime_ent_lookup(name)) < 0 &&
	    (cp = mime_ent_lookup(str_lower(name))) < 0)
		return -1;
	*n = j + 1;
	return cp;
}

/* mime_put_utf8 - code point cp (valid) appended to out in UTF-8. */
static void
mime_put_utf8(struct buf *out, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, u, n);
}

/*
 * mime_html_tag_end - the tag at in[0..len) whose name ends at in[i]
 * (mime_html_tag_name): the index just after its '>', or len when it
 * has none. With attrs (a start tag), as browsers read it: a value that
 * starts with a quote right after an attribute's '=' may hold a '>' (<a
 * title="x > y">), an unterminated one runs to the end; an unquoted
 * value ends at a space or '>', whatever it holds (<a href=x="y>).
 */
static size_t
mime_html_tag_end(const char *in, size_t len, size_t i, int attrs)
{
	if (!attrs) {
		const char *gt = memchr(in + i, '>', len - i);

		return gt != NULL ? (size_t)(gt - in) + 1 : len;
	}
	while (i < len && in[i] != '>') {
		if (in[i++] != '=')
			continue;
		while (i < len && isspace((unsigned char)in[i]))
			i++;
		if (i < len && (in[i] == '"' || in[i] == '\'')) {
			const char *q = memchr(in + i + 1, in[i], len - i - 1);

			if (q == NULL)
				return len;
			i = (size_t)(q - in) + 1;
		} else {
			while (i < len && !isspace((unsigned char)in[i]) &&
			    in[i] != '>')
				i++;
		}
	}
	return i < len ? i + 1 : len;
}

/* mime_html_strip - text of HTML in[0..len) appended to out, in one
 * pass (linear in len, whatever the markup): tags removed (a block tag
 * ends a word: a space is written; an inline one does not), comments,
 * script and style contents dropped, character references decoded. */
static void
mime_html_strip(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		if (in[i] == '<') {
			char name[MIME_TAG_NAME];
			int exact, closing, skip_to = 0;	/* 1 script, 2 style */

			if (len - i > 4 && strncmp(in + i, "<!--", 4) == 0) {
				const char *e = memmem(in + i, len - i, "-->", 3);
				i = e ? (size_t)(e - in) + 3 : len;
				continue;
			}
			size_t ne = mime_html_tag_name(in + i, len - i, name,
			    &exact, &closing);

			/* <script> or <script src=...>, not <scripts>: a
			 * browser shows what follows that one. */
			if (exact && !closing && strcmp(name, "script") == 0)
				skip_to = 1;
			else if (exact && !closing && strcmp(name, "style") == 0)
				skip_to = 2;
			i += mime_html_tag_end(in + i, len - i, ne > 0 ? ne : 1,
			    ne > 0 && !closing);
			if (skip_to || mime_html_breaks(name))
				buf_append(out, " ", 1);
			if (skip_to) {
				const char *end = skip_to == 1 ? "</script" : "</style";
				size_t el = strlen(end);
				while (i + el <= len && strncasecmp(in + i, end, el) != 0)
					i++;
				if (i + el > len)
					i = len;
			}
			continue;
		}
		if (in[i] == '&') {
			size_t n;
			long cp = mime_html_ref(in + i, len - i, &n);

			if (cp >= 0) {
				mime_put_utf8(out, (unsigned long)cp);
				i += n;
				continue;
			}
		}
		/* Text up to the next tag or reference, in one piece. */
		size_t j = i + 1;

		while (j < len && in[j] != '<' && in[j] != '&')
			j++;
		buf_append(out, in + i, j - i);
		i = j;
	}
}

/*
 * mime_space_len - the length of the UTF-8 sequence at p[0..left) when
 * it is a space a reader sees as one but a pattern's \s (without /u)
 * does not: no-break space U+00A0, U+1680, the spaces U+2000..U+200A,
 * U+202F, U+205F, U+3000. 0 otherwise.
 */
static size_t
mime_space_len(const unsigned char *p, size_t left)
{
	if (left >= 2 && p[0] == 0xc2 && p[1] == 0xa0)
		return 2;
	if (left < 3)
		return 0;
	if ((p[0] == 0xe2 && p[1] == 0x80 && (p[2] <= 0x8a || p[2] == 0xaf)) ||
	    (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f) ||
	    (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80) ||
	    (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80))
		return 3;
	return 0;
}

/*
 * mime_fold_text - in b->data[from..] (UTF-8), what would hide a word
 * from a pattern while the reader sees it plainly: characters a reader
 * does not see are dropped (the soft hyphen U+00AD, the zero-width
 * space, non-joiner and joiner U+200B..U+200D, the word joiner U+2060,
 * U+FEFF), and the other spaces become a plain space (mime_space_len).
 */
static void
mime_fold_text(struct buf *b, size_t from)
{
	size_t r = from, w = from;

	while (r < b->len) {
		const unsigned char *p = (const unsigned char *)b->data + r;
		size_t left = b->len - r, n = 0;

		if (p[0] < 0x80) {
			b->data[w++] = b->data[r++];
			continue;
		}
		if (left >= 2 && p[0] == 0xc2 && p[1] == 0xad)
			n = 2;
		else if (left >= 3 && p[0] == 0xe2 && ((p[1] == 0x80 &&
		    p[2] >= 0x8b && p[2] <= 0x8d) || (p[1] == 0x81 && p[2] == 0xa0)))
			n = 3;
		else if (left >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
			n = 3;
		if (n > 0) {
			r += n;
			continue;
		}
		if ((n = mime_space_len(p, left)) > 0) {
			b->data[w++] = ' ';
			r += n;
			continue;
		}
		b->data[w++] = b->data[r++];
	}
	b->len = w;
	if (b->data != NULL)
		b->data[w] = '\0';
}

/* mime_end_leaf - the current leaf part is complete: add its text. */
static void
mime_end_leaf(struct mime *m)
{
	if (m->state == MS_BODY && m->leaf_text && m->part.len > 0) {
		struct buf u;
		buf_init(&u, m->max + 4096);
		if (mime_to_utf8(m->charset, m->part.data, m->part.len, &u) != 0)
			m->flags |= MIME_F_TRUNCATED;
		if (m->text.len > 0)
			buf_append(&m->text, "\n", 1);
		size_t before = m->text.len;
		if (m->leaf_html) {
			struct buf h;
			buf_init(&h, m->max);
			mime_html_strip(u.data ? u.data : "", u.len, &h);
			if (buf_append(&m->text, h.data ? h.data : "", h.len) != 0)
				m->flags |= MIME_F_TRUNCATED;
			buf_free(&h);
		} else if (buf_append(&m->text, u.data ? u.data : "", u.len) != 0) {
			m->flags |= MIME_F_TRUNCATED;
		}
		if (m->text.len == before && u.len > 0) {
			/* Did not fit: keep what does. */
			size_t room = m->max > m->text.len ? m->max - m->text.len : 0;
			buf_append(&m->text, u.data, room < u.len ? room : u.len);
		}
		mime_fold_text(&m->text, before);
		buf_free(&u);
	}
	buf_reset(&m->part);
	m->leaf_text = m->leaf_html = 0;
	m->b64_acc = 0;
	m->b64_bits = 0;
}

static void
mime_add_attach(struct mime *m, const char *name, const char *type)
{
	if (m->natt == MIME_MAX_ATTACH)
		return;
	m->att_name[m->natt] = mime_decode_header(name, 1024);
	m->att_type[m->natt] = str_lower(xstrdup(type));
	m->natt++;
}

/* mime_begin_part - the header block of a part (or the message) is in
 * hdrs: decide what its body is. */
static void
mime_begin_part(struct mime *m, const char *hdrs)
{
	char ct[2048], cte[64], cd[1024], type[128], p[MIME_MAX_PARAM];

	if (mime_hdr_get(hdrs, "Content-Type", ct, sizeof(ct)) != 0)
		str_copy(ct, "text/plain", sizeof(ct));
	size_t tl = strcspn(ct, ";");
	char *tv = ct;
	while (*tv == ' ' && tl > 0) {
		tv++;
		tl--;
	}
	str_copy(type, "", sizeof(type));
	if (tl < sizeof(type)) {
		memcpy(type, tv, tl);
		type[tl] = '\0';
	}
	str_lower(str_trim(type));
	if (strchr(type, '/') == NULL) {
		m->flags |= type[0] ? MIME_F_BROKEN : 0;
		str_copy(type, "text/plain", sizeof(type));
	}
	if (strncmp(type, "multipart/", 10) == 0) {
		if (mime_param(ct, "boundary", p, sizeof(p)) == 0 && p[0] != '\0' &&
		    strlen(p) <= 70 && m->nbnd < MIME_MAX_DEPTH) {
			m->bnd[m->nbnd++] = xstrdup(p);
			m->state = MS_SKIP;	/* preamble */
			return;
		}
		m->flags |= MIME_F_BROKEN;
		str_copy(type, "text/plain", sizeof(type));
	}
	if (strcmp(type, "message/rfc822") == 0 && m->nested < MIME_MAX_DEPTH) {
		m->nested++;
		m->state = MS_HEADERS;
		buf_reset(&m->hdrs);
		return;
	}
	m->enc = ME_PLAIN;
	if (mime_hdr_get(hdrs, "Content-Transfer-Encoding", cte, sizeof(cte)) == 0) {
		char *e = str_lower(str_trim(cte));
		if (strcmp(e, "quoted-printable") == 0)
			m->enc = ME_QP;
		else if (strcmp(e, "base64") == 0)
			m->enc = ME_B64;
	}
	int attach = 0;
	p[0] = '\0';
	if (mime_hdr_get(hdrs, "Content-Disposition", cd, sizeof(cd)) == 0) {
		attach = strncasecmp(str_trim(cd), "attachment", 10) == 0;
		mime_param(cd, "filename", p, sizeof(p));
	}
	if (p[0] == '\0')
		mime_param(ct, "name", p, sizeof(p));
	if (attach || p[0] != '\0')
		mime_add_attach(m, p, type);
	m->leaf_html = strcmp(type, "text/html") == 0;
	m->leaf_text = !attach && p[0] == '\0' &&
	    (m->leaf_html || strcmp(type, "text/plain") == 0);
	if (mime_param(ct, "charset", m->charset, sizeof(m->charset)) != 0)
		m->charset[0] = '\0';
	m->state = MS_BODY;
}

static void
mime_b64(struct mime *m, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;
		if (c >= 'A' && c <= 'Z') v = c - 'A';
		else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
		else if (c >= '0' && c <= '9') v = c - '0' + 52;
		else if (c == '+') v = 62;
		else if (c == '/') v = 63;
		else if (c == '=') { m->b64_bits = 0; m->b64_acc = 0; continue; }
		else {
			if (!isspace(c))
				m->flags |= MIME_F_BROKEN;
			continue;
		}
		m->b64_acc = (m->b64_acc << 6) | (unsigned)v;
		m->b64_bits += 6;
		if (m->b64_bits >= 8) {
			m->b64_bits -= 8;
			unsigned char o = (unsigned char)(m->b64_acc >> m->b64_bits);
			if (buf_append(&m->part, &o, 1) != 0)
				m->flags |= MIME_F_TRUNCATED;
			m->b64_acc &= (1u << m->b64_bits) - 1;
		}
	}
}

static int
mime_hex(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

static void
mime_qp(struct mime *m, const char *s, size_t len, int eol)
{
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;	/* RFC 2045 §6.7 (3): trailing white space is padding */
	int soft = len > 0 && s[len - 1] == '=';
	if (soft)
		len--;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int h, l;
		if (c == '=' && i + 2 < len &&
		    (h = mime_hex(s[i + 1])) >= 0 && (l = mime_hex(s[i + 2])) >= 0) {
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (buf_append(&m->part, &c, 1) != 0)
			m->flags |= MIME_F_TRUNCATED;
	}
	if (eol && !soft && buf_append(&m->part, "\n", 1) != 0)
		m->flags |= MIME_F_TRUNCATED;
}

/* mime_boundary - which boundary line s is: index in the stack, or -1;
 * *close is set for "--boundary--". */
static int
mime_boundary(const struct mime *m, const char *s, size_t len, int *close)
{
	if (len < 3 || s[0] != '-' || s[1] != '-')
		return -1;
	for (int i = m->nbnd - 1; i >= 0; i--) {
		size_t bl = strlen(m->bnd[i]);
		if (len < 2 + bl || memcmp(s + 2, m->bnd[i], bl) != 0)
			continue;
		const char *r = s + 2 + bl;
		size_t rl = len - 2 - bl;
		*close = rl >= 2 && r[0] == '-' && r[1] == '-';
		if (*close) {
			r += 2;
			rl -= 2;
		}
		while (rl > 0 && (*r == ' ' || *r == '\t')) {
			r++;
			rl--;
		}
		if (rl == 0)
			return i;
	}
	return -1;
}

/* mime_line - one body line (without its line end; eol = it had one). */
static void
mime_line(struct mime *m, const char *s, size_t len, int eol)
{
	int close = 0, b;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (m->nbnd > 0 && (b = mime_boundary(m, s, len, &close)) >= 0) {
		mime_end_leaf(m);
		if (b != m->nbnd - 1)
			m->flags |= MIME_F_BROKEN;	/* inner one never closed */
		while (m->nbnd > b + 1)
			free(m->bnd[--m->nbnd]);
		if (close) {
			free(m->bnd[--m->nbnd]);
			m->state = MS_SKIP;		/* epilogue */
		} else {
			m->state = MS_HEADERS;
			buf_reset(&m->hdrs);
		}
		return;
	}
	switch (m->state) {
	case MS_HEADERS:
		if (len == 0) {
			mime_begin_part(m, m->hdrs.data ? m->hdrs.data : "");
			buf_reset(&m->hdrs);
		} else if (buf_append(&m->hdrs, s, len) == 0) {
			buf_append(&m->hdrs, "\n", 1);
		}
		break;
	case MS_BODY:
		if (!m->leaf_text)
			break;
		if (m->enc == ME_B64)
			mime_b64(m, s, len);
		else if (m->enc == ME_QP)
			mime_qp(m, s, len, eol);
		else if (buf_append(&m->part, s, len) != 0 ||
		    (eol && buf_append(&m->part, "\n", 1) != 0))
			m->flags |= MIME_F_TRUNCATED;
		break;
	case MS_SKIP:
		break;
	}
}

struct mime *
mime_new(const char *hdrs, size_t max_bytes)
{
	struct mime *m = xcalloc(1, sizeof(*m));

	m->max = max_bytes;
	buf_init(&m->raw, max_bytes);
	buf_init(&m->text, max_bytes);
	buf_init(&m->line, MIME_MAX_LINE);
	buf_init(&m->hdrs, MIME_MAX_PART_HDRS);
	buf_init(&m->part, max_bytes);
	mime_begin_part(m, hdrs ? hdrs : "");
	return m;
}

void
mime_free(struct mime *m)
{
	if (m == NULL)
		return;
	buf_free(&m->raw);
	buf_free(&m->text);
	buf_free(&m->line);
	buf_free(&m->hdrs);
	buf_free(&m->part);
	for (int i = 0; i < m->nbnd; i++)
		free(m->bnd[i]);
	for (size_t i = 0; i < m->natt; i++) {
		free(m->att_name[i]);
		free(m->att_type[i]);
	}
	free(m);
}

void
mime_feed(struct mime *m, const unsigned char *data, size_t len)
{
	if (m->raw.len < m->max) {
		size_t room = m->max - m->raw.len;
		buf_append(&m->raw, data, len < room ? len : room);
		if (len > room)
			m->flags |= MIME_F_TRUNCATED;
	} else if (len > 0) {
		m->flags |= MIME_F_TRUNCATED;
	}
	while (len > 0) {
		const unsigned char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		size_t room = MIME_MAX_LINE - m->line.len;
		if (n >= room) {
			/* Over-long line: handle what we have as a piece. */
			buf_append(&m->line, data, room);
			mime_line(m, m->line.data, m->line.len, 0);
			buf_reset(&m->line);
			data += room;
			len -= room;
			continue;
		}
		buf_append(&m->line, data, n);
		if (nl == NULL)
			return;
		mime_line(m, m->line.data ? m->line.data : "", m->line.len, 1);
		buf_reset(&m->line);
		data += n + 1;
		len -= n + 1;
	}
}

void
mime_finish(struct mime *m)
{
	if (m->line.len > 0)
		mime_line(m, m->line.data, m->line.len, 0);
	buf_reset(&m->line);
	mime_end_leaf(m);
	if (m->nbnd > 0)
		m->flags |= MIME_F_BROKEN;	/* unterminated multipart */
	while (m->nbnd > 0)
		free(m->bnd[--m->nbnd]);
	m->state = MS_SKIP;
}

const char *
mime_text(const struct mime *m, size_t *len)
{
	*len = m->text.len;
	return m->text.data ? m->text.data : "";
}

const char *
mime_raw(const struct mime *m, size_t *len)
{
	*len = m->raw.len;
	return m->raw.data ? m->raw.data : "";
}

size_t
mime_nattach(const struct mime *m)
{
	return m->natt;
}

const char *
mime_attach_name(const struct mime *m, size_t i)
{
	return i < m->natt ? m->att_name[i] : NULL;
}

const char *
mime_attach_type(const struct mime *m, size_t i)
{
	return i < m->natt ? m->att_type[i] : NULL;
}

int
mime_flags(const struct mime *m)
{
	return m->flags;
}

/* mime_word - decode one encoded word at s ("=?cs?X?text?="); on
 * success append it to out and return its length, else 0. */
static size_t
mime_word(const char *s, struct buf *out)
{
	const char *q1, *q2, *end;
	char cs[64];

	if (s[0] != '=' || s[1] != '?')
		return 0;
	q1 = strchr(s + 2, '?');
	if (q1 == NULL || (size_t)(q1 - s - 2) >= sizeof(cs) || q1 == s + 2)
		return 0;
	if (!(q1[1] == 'B' || q1[1] == 'b' || q1[1] == 'Q' || q1[1] == 'q') ||
	    q1[2] != '?')
		return 0;
	q2 = q1 + 2;
	end = strstr(q2 + 1, "?=");
	if (end == NULL || memchr(q2 + 1, ' ', (size_t)(end - q2 - 1)) != NULL)
		return 0;
	memcpy(cs, s + 2, (size_t)(q1 - s - 2));
	cs[q1 - s - 2] = '\0';
	char *star = strchr(cs, '*');	/* RFC 2231 language suffix */
	if (star)
		*star = '\0';
	struct buf raw;
	buf_init(&raw, 4096);
	const char *t = q2 + 1;
	size_t tl = (size_t)(end - t);
	if (q1[1] == 'B' || q1[1] == 'b') {
		unsigned acc = 0;
		int bits = 0;
		for (size_t i = 0; i < tl; i++) {
			const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			const char *p = t[i] ? strchr(al, t[i]) : NULL;
			if (p == NULL)
				continue;
			acc = (acc << 6) | (unsigned)(p - al);
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				unsigned char o = (unsigned char)(acc >> bits);
				buf_append(&raw, &o, 1);
				acc &= (1u << bits) - 1;
			}
		}
	} else {
		for (size_t i = 0; i < tl; i++) {
			char c = t[i];
			int h, l;
			if (c == '_')
				c = ' ';
			else if (c == '=' && i + 2 < tl && (h = mime_hex(t[i + 1])) >= 0 &&
			    (l = mime_hex(t[i + 2])) >= 0) {
				c = (char)(h * 16 + l);
				i += 2;
			}
			buf_append(&raw, &c, 1);
		}
	}
	mime_to_utf8(cs, raw.data ? raw.data : "", raw.len, out);
	buf_free(&raw);
	return (size_t)(end + 2 - s);
}

char *
mime_decode_header(const char *value, size_t maxlen)
{
	struct buf out;
	const char *s = value ? value : "";
	int last_word = 0;	/* the previous token was an encoded word */
	char *r;

	buf_init(&out, maxlen);
	while (*s && out.len < maxlen) {
		if (*s == '\r' || *s == '\n') {
			s++;
			continue;
		}
		if (s[0] == '=' && s[1] == '?') {
			size_t used = mime_word(s, &out);
			if (used > 0) {
				s += used;
				last_word = 1;
				continue;
			}
		}
		if (last_word && (*s == ' ' || *s == '\t')) {
			/* Drop white space between two encoded words. */
			const char *w = s;
			while (*w == ' ' || *w == '\t' || *w == '\r' || *w == '\n')
				w++;
			if (w[0] == '=' && w[1] == '?') {
				struct buf probe;
				buf_init(&probe, maxlen + 4096);
				size_t used = mime_word(w, &probe);
				buf_free(&probe);
				if (used > 0) {
					s = w;
					continue;
				}
			}
		}
		last_word = 0;
		buf_append(&out, s, 1);
		s++;
	}
	r = xstrdup(out.data ? out.data : "");
	buf_free(&out);
	return r;
}
