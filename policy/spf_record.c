/*
 * spf_record.c - RFC 7208 record syntax: validator, libspf2 rewrite and
 * explanation-text check (see spf_record.h for what and why).
 *
 * Called by policy/spf.c's libspf2 DNS layer for every record it
 * selects and every explanation text it fetches; unit-tested by
 * tests/unit/spf_record_test.c.
 *
 * The grammar is RFC 7208 §12 (terms separated by one or more spaces,
 * case-insensitive names). Where a mechanism takes a domain-spec and a
 * dual-cidr-length, the CIDR lengths are taken from the end of the term
 * ("/N", "//N", "/N//M"), since "/" is also a macro-literal.
 *
 * Owns nothing; no state; thread-safe.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf_record.h"
#include "util.h"

#define REC_VERSION	"v=spf1"
#define REC_LETTERS_DOMAIN	"slodiphv"	/* §7.1: c, r, t are exp-only */
#define REC_LETTERS_ALL		"slodiphvcrt"
#define REC_DELIMS	".-+,/_="

/* One term of a record. */
struct rec_term {
	const char	*p;
	size_t		 n;
};

/* A parsed directive or modifier (only what the rewrite needs). */
struct rec_item {
	char		 qual;		/* '+', '-', '?', '~' or 0 */
	const char	*name;		/* mechanism or modifier name */
	size_t		 namelen;
	int		 modifier;
	const char	*arg;		/* after "name" ("" if none) */
	size_t		 arglen;
};

/* rec_next - the next space-separated term at *pos; 0 at the end. */
static int
rec_next(const char *txt, size_t len, size_t *pos, struct rec_term *t)
{
	size_t i = *pos;

	while (i < len && txt[i] == ' ')
		i++;
	if (i >= len)
		return 0;
	t->p = txt + i;
	while (i < len && txt[i] != ' ')
		i++;
	t->n = (size_t)(txt + i - t->p);
	*pos = i;
	return 1;
}

static int
rec_fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
rec_eq(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

/* rec_split - qualifier, name and argument of a term. */
static void
rec_split(const struct rec_term *t, struct rec_item *it)
{
	const char *p = t->p, *end = t->p + t->n;

	memset(it, 0, sizeof(*it));
	if (p < end && strchr("+-?~", *p) != NULL)
		it->qual = *p++;
	it->name = p;
	while (p < end && (isalnum((unsigned char)*p) || *p == '-' ||
	    *p == '_' || *p == '.'))
		p++;
	it->namelen = (size_t)(p - it->name);
	it->modifier = it->qual == 0 && p < end && *p == '=';
	it->arg = p;
	it->arglen = (size_t)(end - p);
}

/* ------------------------------------------------------- macro strings */

/*
 * rec_macro_string - p..p+n is a macro-string whose macro letters are in
 * letters; *ends_macro is set when it ends with a macro-expand. 0 / -1.
 */
static int
rec_macro_string(const char *p, size_t n, const char *letters,
    int *ends_macro, char *why, size_t whylen)
{
	size_t i = 0;

	*ends_macro = 0;
	while (i < n) {
		unsigned char c = (unsigned char)p[i];

		*ends_macro = 0;
		if (c != '%') {
			if (c < 0x21 || c > 0x7e)
				return rec_fail(why, whylen, "octet 0x%02x in a "
				    "macro-string", c);
			i++;
			continue;
		}
		if (i + 1 >= n)
			return rec_fail(why, whylen, "lone '%%' at the end of "
			    "\"%.*s\"", (int)n, p);
		c = (unsigned char)p[i + 1];
		*ends_macro = 1;
		if (c == '%' || c == '_' || c == '-') {
			i += 2;
			continue;
		}
		if (c != '{')
			return rec_fail(why, whylen, "bad macro escape "
			    "\"%%%c\"", c);
		i += 2;
		if (i >= n || strchr(letters, tolower((unsigned char)p[i])) ==
		    NULL || p[i] == '\0')
			return rec_fail(why, whylen, "bad macro letter in "
			    "\"%.*s\"", (int)n, p);
		i++;
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
		if (i < n && (p[i] == 'r' || p[i] == 'R'))
			i++;
		while (i < n && p[i] != '\0' && strchr(REC_DELIMS, p[i]) != NULL)
			i++;
		if (i >= n || p[i] != '}')
			return rec_fail(why, whylen, "unterminated or bad macro "
			    "in \"%.*s\"", (int)n, p);
		i++;
	}
	return 0;
}

/* rec_toplabel - RFC 7208 toplabel: alphanumerics with at least one
 * letter, or with inner hyphens. */
static int
rec_toplabel(const char *p, size_t n)
{
	int alpha = 0, hyphen = 0;

	if (n == 0 || !isalnum((unsigned char)p[0]) ||
	    !isalnum((unsigned char)p[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (isalpha((unsigned char)p[i]))
			alpha = 1;
		else if (p[i] == '-')
			hyphen = 1;
		else if (!isdigit((unsigned char)p[i]))
			return 0;
	}
	return alpha || hyphen;
}

/* rec_domain_spec - macro-string domain-end (RFC 7208 §7.1, §12). */
static int
rec_domain_spec(const char *p, size_t n, char *why, size_t whylen)
{
	size_t end = n, dot;
	int ends_macro;

	if (n == 0)
		return rec_fail(why, whylen, "empty domain-spec");
	if (rec_macro_string(p, n, REC_LETTERS_DOMAIN, &ends_macro, why,
	    whylen) != 0)
		return -1;
	if (ends_macro)
		return 0;
	if (p[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && p[dot - 1] != '.' && p[dot - 1] != '}' &&
	    p[dot - 1] != '%'; dot--)
		;
	if (dot == 0 || p[dot - 1] != '.' ||
	    !rec_toplabel(p + dot, end - dot))
		return rec_fail(why, whylen, "domain-spec \"%.*s\" does not end "
		    "in a valid top label", (int)n, p);
	return 0;
}

/* ------------------------------------------------------ networks, CIDR */

/* rec_cidr - "0" or 1-9 followed by digits, at most max; -1 if bad. */
static int
rec_cidr(const char *p, size_t n, int max)
{
	int v = 0;

	if (n == 0 || n > 3 || (p[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v <= max ? v : -1;
}

/* rec_ip4 - qnum "." qnum "." qnum "." qnum, no leading zeros. */
static int
rec_ip4(const char *p, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t s = i;

		if (part > 0) {
			if (i >= n || p[i] != '.')
				return 0;
			s = ++i;
		}
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
		if (rec_cidr(p + s, i - s, 255) < 0)
			return 0;
	}
	return i == n;
}

static int
rec_ip6(const char *p, size_t n)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	unsigned char a[16];

	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, a) == 1;
}

/*
 * rec_dual_cidr - strip a dual-cidr-length from the end of p..p+*n:
 * sets *c4 / *c6 (-1 when absent) and shortens *n. 0, or -1 when a
 * length is malformed or out of range.
 */
static int
rec_dual_cidr(const char *p, size_t *n, int *c4, int *c6)
{
	size_t end = *n, i;

	*c4 = *c6 = -1;
	for (i = end; i > 0 && isdigit((unsigned char)p[i - 1]); i--)
		;
	if (i < end && i >= 2 && p[i - 1] == '/' && p[i - 2] == '/') {
		if ((*c6 = rec_cidr(p + i, end - i, 128)) < 0)
			return -1;
		end = i - 2;
		for (i = end; i > 0 && isdigit((unsigned char)p[i - 1]); i--)
			;
	}
	if (i < end && i >= 1 && p[i - 1] == '/') {
		if ((*c4 = rec_cidr(p + i, end - i, 32)) < 0)
			return -1;
		end = i - 1;
	}
	*n = end;
	return 0;
}

/* ------------------------------------------------------------ terms */

/* rec_ipnet - "ip4:" / "ip6:" argument: network and optional length. */
static int
rec_ipnet(const struct rec_item *it, int v6, char *why, size_t whylen)
{
	const char *a = it->arg + 1, *slash;
	size_t n = it->arglen - 1, netlen;

	if (it->arglen < 2 || it->arg[0] != ':')
		return rec_fail(why, whylen, "ip%c needs a network", v6 ? '6' :
		    '4');
	slash = memchr(a, '/', n);
	netlen = slash != NULL ? (size_t)(slash - a) : n;
	if (!(v6 ? rec_ip6(a, netlen) : rec_ip4(a, netlen)))
		return rec_fail(why, whylen, "bad ip%c network \"%.*s\"",
		    v6 ? '6' : '4', (int)netlen, a);
	if (slash != NULL && rec_cidr(slash + 1, n - netlen - 1,
	    v6 ? 128 : 32) < 0)
		return rec_fail(why, whylen, "bad ip%c CIDR length \"%.*s\"",
		    v6 ? '6' : '4', (int)(n - netlen), slash);
	return 0;
}

/* rec_mechanism - one directive (after the qualifier). */
static int
rec_mechanism(const struct rec_item *it, int *has_all, char *why,
    size_t whylen)
{
	const char *nm = it->name;
	size_t nl = it->namelen, dl;
	int c4, c6;

	if (rec_eq(nm, nl, "all")) {
		*has_all = 1;
		return it->arglen == 0 ? 0 : rec_fail(why, whylen, "\"all\" "
		    "takes no argument");
	}
	if (rec_eq(nm, nl, "include") || rec_eq(nm, nl, "exists")) {
		if (it->arglen == 0 || it->arg[0] != ':')
			return rec_fail(why, whylen, "%.*s needs a domain",
			    (int)nl, nm);
		return rec_domain_spec(it->arg + 1, it->arglen - 1, why, whylen);
	}
	if (rec_eq(nm, nl, "ip4") || rec_eq(nm, nl, "ip6"))
		return rec_ipnet(it, nm[2] == '6', why, whylen);
	if (rec_eq(nm, nl, "ptr")) {
		if (it->arglen == 0)
			return 0;
		if (it->arg[0] != ':')
			return rec_fail(why, whylen, "bad ptr argument");
		return rec_domain_spec(it->arg + 1, it->arglen - 1, why, whylen);
	}
	if (rec_eq(nm, nl, "a") || rec_eq(nm, nl, "mx")) {
		dl = it->arglen;
		if (rec_dual_cidr(it->arg, &dl, &c4, &c6) != 0)
			return rec_fail(why, whylen, "bad CIDR length in "
			    "\"%.*s%.*s\"", (int)nl, nm, (int)it->arglen,
			    it->arg);
		if (dl == 0)
			return 0;
		if (it->arg[0] != ':')
			return rec_fail(why, whylen, "bad %.*s argument",
			    (int)nl, nm);
		return rec_domain_spec(it->arg + 1, dl - 1, why, whylen);
	}
	return rec_fail(why, whylen, "unknown mechanism \"%.*s\"", (int)nl, nm);
}

/* rec_modifier - one modifier; counts redirect= and exp=. */
static int
rec_modifier(const struct rec_item *it, int *nredirect, int *nexp,
    char *why, size_t whylen)
{
	const char *v = it->arg + 1;
	size_t vl = it->arglen - 1;
	int ends_macro;

	if (it->namelen == 0 || !isalpha((unsigned char)it->name[0]))
		return rec_fail(why, whylen, "bad modifier name \"%.*s\"",
		    (int)it->namelen, it->name);
	if (rec_eq(it->name, it->namelen, "redirect") ||
	    rec_eq(it->name, it->namelen, "exp")) {
		int *cnt = it->name[0] == 'r' || it->name[0] == 'R' ?
		    nredirect : nexp;

		if (++*cnt > 1)
			return rec_fail(why, whylen, "%.*s= more than once",
			    (int)it->namelen, it->name);
		return rec_domain_spec(v, vl, why, whylen);
	}
	return rec_macro_string(v, vl, REC_LETTERS_ALL, &ends_macro, why,
	    whylen);
}

int
chk_spfrec_validate(const char *txt, size_t len, char *why, size_t whylen)
{
	struct rec_term t;
	struct rec_item it;
	size_t pos = sizeof(REC_VERSION) - 1;
	int has_all = 0, nredirect = 0, nexp = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)txt[i];

		if (c < 0x20 || c > 0x7e)
			return rec_fail(why, whylen, "record has a %s octet "
			    "(0x%02x) at %zu", c == 0 ? "NUL" : c < 0x20 ?
			    "control" : "non-ASCII", c, i);
	}
	if (len < pos || strncasecmp(txt, REC_VERSION, pos) != 0 ||
	    (len > pos && txt[pos] != ' '))
		return rec_fail(why, whylen, "not a v=spf1 record");
	while (rec_next(txt, len, &pos, &t)) {
		rec_split(&t, &it);
		if (it.modifier ? rec_modifier(&it, &nredirect, &nexp, why,
		    whylen) != 0 : rec_mechanism(&it, &has_all, why,
		    whylen) != 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ rewrite */

struct rec_sb {
	char	*s;
	size_t	 len, cap;
};

static void
sb_add(struct rec_sb *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_term(struct rec_sb *b, const char *p, size_t n)
{
	sb_add(b, " ", 1);
	sb_add(b, p, n);
}

/* rec_cidr0_ip - ip4:X/0 or ip6:X/0 as the two /1 halves. */
static int
rec_cidr0_ip(struct rec_sb *b, const struct rec_item *it)
{
	const char *slash = memchr(it->arg, '/', it->arglen);
	int v6 = it->name[2] == '6';
	char q[2] = { it->qual, '\0' }, *s;

	if (slash == NULL || rec_cidr(slash + 1, it->arglen - (size_t)(slash -
	    it->arg) - 1, 128) != 0)
		return 0;
	s = xasprintf(v6 ? " %sip6:::/1 %sip6:8000::/1" :
	    " %sip4:0.0.0.0/1 %sip4:128.0.0.0/1", q, q);
	sb_add(b, s, strlen(s));
	free(s);
	return 1;
}

/* rec_cidr_am - a/mx with a CIDR length 0: keep only the client family's
 * length; a 0 there becomes the any-address suffix. 1 if rewritten. */
static int
rec_cidr_am(struct rec_sb *b, const struct rec_item *it, int family,
    int *any)
{
	char q[2] = { it->qual, '\0' }, *s, *dom;
	size_t dl = it->arglen;
	int c4, c6, c;

	if (rec_dual_cidr(it->arg, &dl, &c4, &c6) != 0 ||
	    (c4 != 0 && c6 != 0))
		return 0;
	c = family == 6 ? c6 : c4;
	if (dl > 1) {
		dom = xstrndup(it->arg + 1, dl - 1);
		if (c == 0 && dom[dl - 2] == '.')
			dom[dl - 2] = '\0';
	} else
		dom = xstrdup(c == 0 ? "%{d}" : "");
	if (c == 0) {
		*any = 1;
		s = xasprintf(" %s%.*s:%s%s", q, (int)it->namelen, it->name,
		    dom, CHK_SPFREC_ANY_SUFFIX);
	} else if (c > 0) {
		s = xasprintf(" %s%.*s%s%s%s%d", q, (int)it->namelen, it->name,
		    *dom != '\0' ? ":" : "", dom, family == 6 ? "//" : "/", c);
	} else {
		s = xasprintf(" %s%.*s%s%s", q, (int)it->namelen, it->name,
		    *dom != '\0' ? ":" : "", dom);
	}
	sb_add(b, s, strlen(s));
	free(s);
	free(dom);
	return 1;
}

char *
chk_spfrec_rewrite(const char *txt, size_t len, int family, int *any)
{
	struct rec_sb b = { NULL, 0, 0 };
	struct rec_term t, redirect = { NULL, 0 };
	struct rec_item it;
	size_t pos = sizeof(REC_VERSION) - 1;
	int has_all = 0;

	*any = 0;
	sb_add(&b, REC_VERSION, sizeof(REC_VERSION) - 1);
	while (rec_next(txt, len, &pos, &t)) {
		rec_split(&t, &it);
		if (it.modifier) {
			if (rec_eq(it.name, it.namelen, "redirect"))
				redirect = t;
			else if (rec_eq(it.name, it.namelen, "exp"))
				sb_term(&b, t.p, t.n);
			continue;	/* unknown modifiers: ignored */
		}
		if (rec_eq(it.name, it.namelen, "all"))
			has_all = 1;
		if ((rec_eq(it.name, it.namelen, "ip4") ||
		    rec_eq(it.name, it.namelen, "ip6")) &&
		    rec_cidr0_ip(&b, &it))
			continue;
		if ((rec_eq(it.name, it.namelen, "a") ||
		    rec_eq(it.name, it.namelen, "mx")) &&
		    rec_cidr_am(&b, &it, family, any))
			continue;
		sb_term(&b, t.p, t.n);
	}
	if (redirect.p != NULL && !has_all)
		sb_term(&b, redirect.p, redirect.n);
	return b.s;
}

int
chk_spfrec_exp_ok(const char *txt, size_t len)
{
	size_t i = 0, s;
	int ends_macro;

	/* explain-string = *( macro-string / SP ) */
	while (i < len) {
		if (txt[i] == ' ') {
			i++;
			continue;
		}
		for (s = i; i < len && txt[i] != ' '; i++)
			;
		if (rec_macro_string(txt + s, i - s, REC_LETTERS_ALL,
		    &ends_macro, NULL, 0) != 0)
			return 0;
	}
	return 1;
}
