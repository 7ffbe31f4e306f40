/*
 * rules.c - load and query the rule set (see rules.h for the language).
 *
 * Loading happens at start-up, in `configtest` and on reload, in one
 * thread; the result is immutable and read by every thread without
 * locks. Lookups are binary searches over sorted arrays. Regex rules
 * are compiled (and JIT-compiled) here; their evaluation is in
 * rules_eval.c. The struct internals are in rules_int.h.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dnsbl.h"
#include "rules_int.h"
#include "util.h"

#define RULES_MAX_TOKENS	4096
#define RULES_MAX_LINE		65536
#define RULES_MAX_LIST_FILE	(16 << 20)

static const char *const thr_names[RT_COUNT] = {
	"add_header", "quarantine", "tempfail", "reject"
};

/* rules_rx_clear - free what one regex rule owns. */
static void
rules_rx_clear(struct rules_rx *x)
{
	free(x->name);
	free(x->header);
	free(x->pattern);
	free(x->list);
	pcre2_code_free(x->code);
	memset(x, 0, sizeof(*x));
}

/*
 * A name index for the parse: open addressing (FNV-1a, linear probing),
 * grown to twice its size when half full. Keys are its own copies. It
 * keeps loading linear in the number of rules: a thousand rules would
 * otherwise cost half a million name comparisons.
 */
struct rp_index {
	char		**key;		/* slot: a key or NULL */
	size_t		 *val;
	size_t		  n, cap;	/* entries, slots (a power of 2) */
};

static size_t
rp_index_hash(const char *name)
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = (h ^ *c) * 1099511628211ULL;
	return (size_t)h;
}

/* rp_index_slot - where name is, or the empty slot where it would go. */
static size_t
rp_index_slot(const struct rp_index *x, const char *name)
{
	size_t i = rp_index_hash(name) & (x->cap - 1);

	while (x->key[i] != NULL && strcmp(x->key[i], name) != 0)
		i = (i + 1) & (x->cap - 1);
	return i;
}

/* rp_index_find - the value stored for name, or -1. */
static long
rp_index_find(const struct rp_index *x, const char *name)
{
	size_t i;

	if (x->cap == 0)
		return -1;
	i = rp_index_slot(x, name);
	return x->key[i] != NULL ? (long)x->val[i] : -1;
}

/* rp_index_add - name (not yet in the index) maps to val. */
static void
rp_index_add(struct rp_index *x, const char *name, size_t val)
{
	size_t i;

	if (2 * (x->n + 1) > x->cap) {
		struct rp_index old = *x;

		x->cap = old.cap ? 2 * old.cap : 64;
		x->key = xcalloc(x->cap, sizeof(*x->key));
		x->val = xcalloc(x->cap, sizeof(*x->val));
		for (size_t j = 0; j < old.cap; j++) {
			if (old.key[j] == NULL)
				continue;
			i = rp_index_slot(x, old.key[j]);
			x->key[i] = old.key[j];
			x->val[i] = old.val[j];
		}
		free(old.key);
		free(old.val);
	}
	i = rp_index_slot(x, name);
	x->key[i] = xstrdup(name);
	x->val[i] = val;
	x->n++;
}

static void
rp_index_free(struct rp_index *x)
{
	for (size_t i = 0; i < x->cap; i++)
		free(x->key[i]);
	free(x->key);
	free(x->val);
	memset(x, 0, sizeof(*x));
}

/* Parser state for one file. */
struct rparse {
	struct rules	*r;
	const char	*file;
	int		 fileno;
	int		 line;
	struct buf	*errs;
	int		 nerr;
	unsigned	 flags;		/* RULES_JIT */
	struct rp_index	 syms;		/* symbol name -> index in r->sym */
	struct rp_index	 names;		/* rule and meta names seen */
};

static void
rp_error(struct rparse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rp_error(struct rparse *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(p->errs, "%s:%d: %s\n", p->file, p->line, msg);
	p->nerr++;
}

/*
 * rp_tokenize - split a line into words. "double quoted" words may hold
 * spaces, \" and \\. '#' at the start of a word starts a comment.
 * Returns the number of tokens or -1 (error already reported).
 */
static int
rp_tokenize(struct rparse *p, char *line, char **tok, int max)
{
	int n = 0;
	char *s = line;

	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0' || *s == '#')
			return n;
		if (n == max) {
			rp_error(p, "too many words on one line");
			return -1;
		}
		if (*s == '"') {
			char *w = ++s, *d = s;
			while (*s != '"') {
				if (*s == '\0') {
					rp_error(p, "unterminated quoted string");
					return -1;
				}
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				*d++ = *s++;
			}
			s++;
			if (*s != '\0' && !isspace((unsigned char)*s)) {
				rp_error(p, "text directly after a quoted string");
				return -1;
			}
			if (*s)
				s++;
			*d = '\0';
			tok[n++] = w;
			continue;
		}
		tok[n++] = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		if (*s)
			*s++ = '\0';
	}
}

static int
rp_symbol_ok(const char *s)
{
	if (!isupper((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!isupper((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '_')
			return 0;
	return 1;
}

static int
rp_number(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return (errno == 0 && end != s && *end == '\0' && isfinite(*out) &&
	    fabs(*out) < 1e6) ? 0 : -1;
}

/* rp_sym - the symbol's entry, made when new. */
static struct rules_sym *
rp_sym(struct rparse *p, const char *name)
{
	struct rules *r = p->r;
	long i = rp_index_find(&p->syms, name);

	if (i >= 0)
		return &r->sym[i];
	r->sym = xrealloc(r->sym, (r->nsym + 1) * sizeof(*r->sym));
	struct rules_sym *s = &r->sym[r->nsym];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
	rp_index_add(&p->syms, name, r->nsym++);
	return s;
}

int
rules_parse_reply(const char *reply, char rcode[4], char xcode[16],
    const char **text)
{
	const char *s = reply;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) || (s[0] != '4' && s[0] != '5'))
		return -1;
	memcpy(rcode, s, 3);
	rcode[3] = '\0';
	s += 3;
	if (*s != ' ' && *s != '\0')
		return -1;
	while (*s == ' ')
		s++;
	xcode[0] = '\0';
	/* Enhanced status code: class.subject.detail (RFC 3463). */
	if (isdigit((unsigned char)*s)) {
		size_t len = strcspn(s, " ");
		int a, b, c, used = 0;
		if (len >= 16 || sscanf(s, "%d.%d.%d%n", &a, &b, &c, &used) != 3 ||
		    (size_t)used != len || a != rcode[0] - '0' || b < 0 ||
		    b > 999 || c < 0 || c > 999)
			return -1;
		memcpy(xcode, s, len);
		xcode[len] = '\0';
		s += len;
		while (*s == ' ')
			s++;
	}
	for (const char *q = s; *q; q++)
		if (iscntrl((unsigned char)*q))
			return -1;
	*text = s;
	return 0;
}

static const char *const expand_vars[] = {
	"client_ip", "helo", "from", "from_domain", "rcpt", "symbol",
	"hostname", NULL
};

/* rp_check_vars - every %{name} must be known; "%%" is a literal %. */
static int
rp_check_vars(struct rparse *p, const char *s)
{
	for (; *s; s++) {
		if (*s != '%')
			continue;
		if (s[1] == '%') {
			s++;
			continue;
		}
		if (s[1] != '{') {
			rp_error(p, "'%%' in a reply must be \"%%%%\" or \"%%{name}\"");
			return -1;
		}
		const char *end = strchr(s, '}');
		if (end == NULL) {
			rp_error(p, "unterminated %%{ in reply");
			return -1;
		}
		size_t len = (size_t)(end - s - 2);
		int found = 0;
		for (int i = 0; expand_vars[i]; i++)
			if (strlen(expand_vars[i]) == len &&
			    strncmp(expand_vars[i], s + 2, len) == 0)
				found = 1;
		if (!found) {
			rp_error(p, "unknown variable %%{%.*s} (known: client_ip, helo, "
			    "from, from_domain, rcpt, symbol, hostname)", (int)len, s + 2);
			return -1;
		}
		s = end;
	}
	return 0;
}

/* rp_action_word - "reject" -> VERDICT_REJECT; -1 if unknown. */
static int
rp_action_word(const char *w)
{
	static const struct { const char *w; enum verdict_action a; } t[] = {
		{ "accept", VERDICT_ACCEPT }, { "add_header", VERDICT_ADD_HEADER },
		{ "quarantine", VERDICT_QUARANTINE }, { "tempfail", VERDICT_TEMPFAIL },
		{ "reject", VERDICT_REJECT }, { "discard", VERDICT_DISCARD },
	};
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (strcmp(t[i].w, w) == 0)
			return (int)t[i].a;
	return -1;
}

/* rp_reply - validate a reply for an action; 0 or -1. */
static int
rp_reply(struct rparse *p, enum verdict_action a, const char *reply)
{
	char rc[4], xc[16];
	const char *text;

	if (a != VERDICT_REJECT && a != VERDICT_TEMPFAIL) {
		rp_error(p, "only reject and tempfail take a reply text");
		return -1;
	}
	if (rules_parse_reply(reply, rc, xc, &text) != 0) {
		rp_error(p, "malformed reply \"%s\": expected \"CODE X.Y.Z text\"",
		    reply);
		return -1;
	}
	if (a == VERDICT_REJECT && rc[0] != '5') {
		rp_error(p, "reject needs a 5xx reply, not %s", rc);
		return -1;
	}
	if (a == VERDICT_TEMPFAIL && rc[0] != '4') {
		rp_error(p, "tempfail needs a 4xx reply, not %s", rc);
		return -1;
	}
	if (strlen(reply) > 400) {
		rp_error(p, "reply text longer than 400 characters");
		return -1;
	}
	return rp_check_vars(p, text);
}

static void
rp_score(struct rparse *p, char **tok, int n)
{
	double v;

	if (n != 3) {
		rp_error(p, "usage: score SYMBOL NUMBER");
		return;
	}
	if (!rp_symbol_ok(tok[1])) {
		rp_error(p, "bad symbol name \"%s\" (A-Z, 0-9, _)", tok[1]);
		return;
	}
	if (rp_number(tok[2], &v) != 0) {
		rp_error(p, "bad score \"%s\"", tok[2]);
		return;
	}
	struct rules_sym *s = rp_sym(p, tok[1]);
	if (s->has_score && s->score_file == p->fileno) {
		rp_error(p, "score %s already set at line %d", tok[1], s->score_line);
		return;
	}
	s->score = v;
	s->has_score = 1;
	s->score_file = p->fileno;
	s->score_line = p->line;
}

static void
rp_action(struct rparse *p, char **tok, int n)
{
	int a;

	if (n < 3 || n > 4) {
		rp_error(p, "usage: action SYMBOL ACTION [\"reply\"]");
		return;
	}
	if (!rp_symbol_ok(tok[1])) {
		rp_error(p, "bad symbol name \"%s\" (A-Z, 0-9, _)", tok[1]);
		return;
	}
	if ((a = rp_action_word(tok[2])) < 0) {
		rp_error(p, "unknown action \"%s\" (accept, add_header, quarantine, "
		    "tempfail, reject, discard)", tok[2]);
		return;
	}
	if (n == 4 && rp_reply(p, (enum verdict_action)a, tok[3]) != 0)
		return;
	struct rules_sym *s = rp_sym(p, tok[1]);
	if (s->act.action != VERDICT_CONTINUE && s->act_file == p->fileno) {
		rp_error(p, "action %s already set at line %d", tok[1], s->act_line);
		return;
	}
	free(s->act.reply);
	s->act.action = (enum verdict_action)a;
	s->act.reply = n == 4 ? xstrdup(tok[3]) : NULL;
	s->act_file = p->fileno;
	s->act_line = p->line;
}

static void
rp_threshold(struct rparse *p, char **tok, int n)
{
	double v;
	int which = -1;

	if (n < 3 || n > 4) {
		rp_error(p, "usage: threshold add_header|quarantine|tempfail|reject "
		    "NUMBER [\"reply\"]");
		return;
	}
	for (int i = 0; i < RT_COUNT; i++)
		if (strcmp(tok[1], thr_names[i]) == 0)
			which = i;
	if (which < 0) {
		rp_error(p, "unknown threshold \"%s\" (add_header, quarantine, "
		    "tempfail, reject)", tok[1]);
		return;
	}
	if (rp_number(tok[2], &v) != 0) {
		rp_error(p, "bad threshold \"%s\"", tok[2]);
		return;
	}
	if (n == 4 && rp_reply(p, which == RT_REJECT ? VERDICT_REJECT :
	    which == RT_TEMPFAIL ? VERDICT_TEMPFAIL : VERDICT_ACCEPT, tok[3]) != 0)
		return;
	if (p->r->thr[which].set && p->r->thr[which].file == p->fileno) {
		rp_error(p, "threshold %s already set at line %d", tok[1],
		    p->r->thr[which].line);
		return;
	}
	free(p->r->thr[which].reply);
	p->r->thr[which].set = 1;
	p->r->thr[which].value = v;
	p->r->thr[which].reply = n == 4 ? xstrdup(tok[3]) : NULL;
	p->r->thr[which].file = p->fileno;
	p->r->thr[which].line = p->line;
}

/* rp_list_item - validate one entry: CIDR, IP, domain (".dom" for
 * subdomains too), address, or address glob. */
static int
rp_list_item(struct rparse *p, const char *name, const char *item)
{
	for (const char *q = item; *q; q++)
		if (iscntrl((unsigned char)*q) || *q == ' ') {
			rp_error(p, "list %s: bad entry \"%s\"", name, item);
			return -1;
		}
	if (strchr(item, ':') != NULL || strchr(item, '/') != NULL ||
	    (isdigit((unsigned char)item[0]) && strspn(item, "0123456789.") ==
	    strlen(item))) {
		if (rules_ip_in_cidr("0.0.0.0", item) < 0) {
			rp_error(p, "list %s: \"%s\" is not an IP address or CIDR",
			    name, item);
			return -1;
		}
	}
	return 0;
}

static void
rp_list_add(struct rules_list *l, const char *item)
{
	l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
	l->items[l->n++] = str_lower(xstrdup(item));
}

static void
rp_list_file(struct rparse *p, struct rules_list *l, const char *path)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t len;
	int saved = p->line;

	if (fp == NULL) {
		rp_error(p, "list %s: cannot open %s: %s", l->name, path,
		    strerror(errno));
		return;
	}
	const char *saved_file = p->file;
	p->file = path;
	p->line = 0;
	while ((len = getline(&line, &cap, fp)) >= 0) {
		p->line++;
		total += (size_t)len;
		if (total > RULES_MAX_LIST_FILE) {
			rp_error(p, "list file larger than %d bytes", RULES_MAX_LIST_FILE);
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *t = str_trim(line);
		if (*t == '\0')
			continue;
		if (rp_list_item(p, l->name, t) == 0)
			rp_list_add(l, t);
	}
	free(line);
	fclose(fp);
	p->file = saved_file;
	p->line = saved;
}

static void
rp_list(struct rparse *p, char **tok, int n)
{
	struct rules *r = p->r;
	struct rules_list *l = NULL;

	if (n < 2) {
		rp_error(p, "usage: list NAME ENTRY... | list NAME file:PATH");
		return;
	}
	for (const char *q = tok[1]; *q; q++)
		if (!islower((unsigned char)*q) && !isdigit((unsigned char)*q) &&
		    *q != '_') {
			rp_error(p, "bad list name \"%s\" (a-z, 0-9, _)", tok[1]);
			return;
		}
	for (size_t i = 0; i < r->nlist; i++)
		if (strcmp(r->list[i].name, tok[1]) == 0)
			l = &r->list[i];
	if (l != NULL && l->file == p->fileno) {
		rp_error(p, "list %s already defined at line %d", tok[1], l->line);
		return;
	}
	if (l == NULL) {
		r->list = xrealloc(r->list, (r->nlist + 1) * sizeof(*r->list));
		l = &r->list[r->nlist++];
		memset(l, 0, sizeof(*l));
		l->name = xstrdup(tok[1]);
	} else {
		/* A later file replaces the whole list. */
		for (size_t i = 0; i < l->n; i++)
			free(l->items[i]);
		l->n = 0;
	}
	l->file = p->fileno;
	l->line = p->line;
	for (int i = 2; i < n; i++) {
		if (strncmp(tok[i], "file:", 5) == 0)
			rp_list_file(p, l, tok[i] + 5);
		else if (rp_list_item(p, l->name, tok[i]) == 0)
			rp_list_add(l, tok[i]);
	}
}

static const char *const target_names[RTG_COUNT] = {
	"helo", "client_name", "client_ip", "from", "rcpt", "header:",
	"header:*", "subject", "from_header", "body", "raw_body",
	"attachment_name", "attachment_type", "tls",
};

const char *
rules_target_name(enum rules_target t)
{
	return (size_t)t < RTG_COUNT ? target_names[t] : "?";
}

enum rules_stage
rules_target_stage(enum rules_target t)
{
	switch (t) {
	case RTG_CLIENT_IP:
	case RTG_CLIENT_NAME:	return RS_CONNECT;
	case RTG_HELO:		return RS_HELO;
	case RTG_FROM:
	case RTG_TLS:		return RS_MAIL;	/* STARTTLS is over by MAIL */
	case RTG_RCPT:		return RS_RCPT;
	default:		return RS_EOM;
	}
}

/* rp_target - parse a target word; -1 if unknown. */
static int
rp_target(const char *w, char **header)
{
	*header = NULL;
	if (strcmp(w, "header:*") == 0)
		return RTG_HEADER_ALL;
	if (strncmp(w, "header:", 7) == 0) {
		const char *h = w + 7;
		if (*h == '\0' || strlen(h) > 128)
			return -1;
		for (const char *q = h; *q; q++)
			if (*q <= ' ' || *q >= 0x7f || *q == ':')
				return -1;
		*header = xstrdup(h);
		return RTG_HEADER;
	}
	for (int i = 0; i < RTG_COUNT; i++)
		if (i != RTG_HEADER && i != RTG_HEADER_ALL &&
		    strcmp(w, target_names[i]) == 0)
			return i;
	return -1;
}

/*
 * rp_pattern_end - s points after the opening '/': find the closing
 * '/', the first unescaped one followed by flag letters and then the end
 * of the line or white space and "score"/"action". NULL if none.
 */
static char *
rp_pattern_end(char *s)
{
	for (char *q = s; *q; q++) {
		if (*q == '\\' && q[1] != '\0') {
			q++;
			continue;
		}
		if (*q != '/')
			continue;
		char *f = q + 1;
		while (isalpha((unsigned char)*f))
			f++;
		char *w = f;
		while (isspace((unsigned char)*w))
			w++;
		if (*w == '\0' || *w == '#' ||
		    (w > f && (strncmp(w, "score", 5) == 0 ||
		    strncmp(w, "action", 6) == 0) && (isspace((unsigned char)w[5]) ||
		    isspace((unsigned char)w[6]))))
			return q;
	}
	return NULL;
}

/* rp_compile - compile pattern with flags; NULL (error reported). */
static pcre2_code *
rp_compile(struct rparse *p, const char *pat, size_t len, const char *flags)
{
	uint32_t opt = 0;
	int errcode;
	PCRE2_SIZE erroff;

	for (const char *f = flags; *f; f++) {
		switch (*f) {
		case 'i': opt |= PCRE2_CASELESS; break;
		case 'm': opt |= PCRE2_MULTILINE; break;
		case 's': opt |= PCRE2_DOTALL; break;
		case 'x': opt |= PCRE2_EXTENDED; break;
		case 'u': opt |= PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF; break;
		default:
			rp_error(p, "unknown pattern flag '%c' (i, m, s, x, u)", *f);
			return NULL;
		}
	}
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, len, opt, &errcode,
	    &erroff, NULL);
	if (code == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		rp_error(p, "pattern /%.*s/ does not compile at offset %zu: %s",
		    (int)(len > 200 ? 200 : len), pat, (size_t)erroff, (char *)msg);
		return NULL;
	}
	/* JIT where the platform has it and the set serves many messages
	 * (RULES_JIT); the interpreter otherwise. */
	if (p->flags & RULES_JIT)
		(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	return code;
}

/* rp_outcome - "score N", "action ACT [reply]" or both, from tok[0..n);
 * sets the symbol's score/action. 0 or -1 (reported). */
static int
rp_outcome(struct rparse *p, const char *name, char **tok, int n)
{
	int i = 0, any = 0;

	while (i < n) {
		if (strcmp(tok[i], "score") == 0 && i + 1 < n) {
			char *sv[3] = { "score", (char *)name, tok[i + 1] };
			int before = p->nerr;
			rp_score(p, sv, 3);
			if (p->nerr != before)
				return -1;
			i += 2;
		} else if (strcmp(tok[i], "action") == 0 && i + 1 < n) {
			int k = i + 2 < n && strcmp(tok[i + 2], "score") != 0 ? 1 : 0;
			char *av[4] = { "action", (char *)name, tok[i + 1],
			    k ? tok[i + 2] : NULL };
			int before = p->nerr;
			rp_action(p, av, 3 + k);
			if (p->nerr != before)
				return -1;
			i += 2 + k;
		} else {
			rp_error(p, "expected \"score NUMBER\" or \"action ACTION "
			    "[\\\"reply\\\"]\" at \"%s\"", tok[i]);
			return -1;
		}
		any = 1;
	}
	if (!any) {
		rp_error(p, "%s needs a score or an action", name);
		return -1;
	}
	return 0;
}

/* rp_name_free - a rule or meta name must be new in this file. An
 * earlier file's rule of that name is replaced (removed here). */
static int
rp_name_free(struct rparse *p, const char *name)
{
	struct rules *r = p->r;

	/* The index holds every name ever defined: not in it, not taken. */
	if (rp_index_find(&p->names, name) < 0) {
		rp_index_add(&p->names, name, 0);
		return 0;
	}
	for (size_t i = 0; i < r->nrx; i++) {
		if (strcmp(r->rx[i].name, name) != 0)
			continue;
		if (r->rx[i].file == p->fileno) {
			rp_error(p, "rule %s already defined at line %d", name,
			    r->rx[i].line);
			return -1;
		}
		rules_rx_clear(&r->rx[i]);
		memmove(&r->rx[i], &r->rx[i + 1], (r->nrx - i - 1) * sizeof(*r->rx));
		r->nrx--;
		break;
	}
	for (size_t i = 0; i < r->nmeta; i++) {
		if (strcmp(r->meta[i].name, name) != 0)
			continue;
		if (r->meta[i].file == p->fileno) {
			rp_error(p, "meta %s already defined at line %d", name,
			    r->meta[i].line);
			return -1;
		}
		free(r->meta[i].name);
		meta_free(r->meta[i].expr);
		memmove(&r->meta[i], &r->meta[i + 1],
		    (r->nmeta - i - 1) * sizeof(*r->meta));
		r->nmeta--;
		break;
	}
	return 0;
}

/*
 * rp_rule - rule NAME TARGET /pattern/flags OUTCOME
 *           rule NAME TARGET in:LIST OUTCOME
 * line is the whole logical line (untokenized: a pattern may hold
 * spaces, quotes and '#').
 */
static void
rp_rule(struct rparse *p, char *line)
{
	char *s = line, *w[3];
	struct rules_rx rx = { 0 };

	w[0] = "rule";
	for (int i = 1; i < 3; i++) {
		while (isspace((unsigned char)*s))
			s++;
		w[i] = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		if (*s)
			*s++ = '\0';
	}
	if (*w[1] == '\0' || *w[2] == '\0') {
		rp_error(p, "usage: rule NAME TARGET /pattern/flags|in:LIST "
		    "score N|action ACTION [\"reply\"]");
		return;
	}
	if (!rp_symbol_ok(w[1])) {
		rp_error(p, "bad rule name \"%s\" (A-Z, 0-9, _)", w[1]);
		return;
	}
	int tg = rp_target(w[2], &rx.header);
	if (tg < 0) {
		rp_error(p, "unknown target \"%s\" (helo, client_name, client_ip, "
		    "from, rcpt, tls, header:NAME, header:*, subject, from_header, "
		    "body, raw_body, attachment_name, attachment_type)", w[2]);
		return;
	}
	rx.target = (enum rules_target)tg;
	while (isspace((unsigned char)*s))
		s++;
	char *rest;
	if (*s == '/') {
		char *end = rp_pattern_end(s + 1);
		if (end == NULL) {
			rp_error(p, "rule %s: pattern must be /.../flags followed by "
			    "score or action", w[1]);
			goto fail;
		}
		char *f = end + 1, *fe = f;
		while (isalpha((unsigned char)*fe))
			fe++;
		char flags[16];
		if ((size_t)(fe - f) >= sizeof(flags)) {
			rp_error(p, "rule %s: too many pattern flags", w[1]);
			goto fail;
		}
		memcpy(flags, f, (size_t)(fe - f));
		flags[fe - f] = '\0';
		rx.pattern = xasprintf("/%.*s/%s", (int)(end - s - 1), s + 1, flags);
		rx.code = rp_compile(p, s + 1, (size_t)(end - s - 1), flags);
		if (rx.code == NULL)
			goto fail;
		rest = fe;
	} else if (strncmp(s, "in:", 3) == 0) {
		char *e = s + 3;
		while (*e && !isspace((unsigned char)*e))
			e++;
		rx.list = xstrndup(s + 3, (size_t)(e - s - 3));
		rx.pattern = xasprintf("in:%s", rx.list);
		if (rx.list[0] == '\0') {
			rp_error(p, "rule %s: in: needs a list name", w[1]);
			goto fail;
		}
		rest = e;
	} else {
		rp_error(p, "rule %s: expected /pattern/flags or in:LIST", w[1]);
		goto fail;
	}
	char *tok[16];
	int n = rp_tokenize(p, rest, tok, (int)ARRAY_LEN(tok));
	if (n < 0 || rp_name_free(p, w[1]) != 0 || rp_outcome(p, w[1], tok, n) != 0)
		goto fail;
	rx.name = xstrdup(w[1]);
	rx.file = p->fileno;
	rx.line = p->line;
	p->r->rx = xrealloc(p->r->rx, (p->r->nrx + 1) * sizeof(*p->r->rx));
	p->r->rx[p->r->nrx++] = rx;
	return;
fail:
	rules_rx_clear(&rx);
}

/* rp_dnsbl - dnsbl|dnswl|rhsbl NAME ZONE [weights] CODE=WEIGHT... (a
 * later file replaces a zone of the same name). */
static void
rp_dnsbl(struct rparse *p, char **tok, int n)
{
	char err[256];

	if (dnsbl_parse(&p->r->dnsbl, tok, n, p->fileno, err, sizeof(err)) != 0)
		rp_error(p, "%s", err);
}

/* rp_meta - meta NAME EXPRESSION OUTCOME */
static void
rp_meta(struct rparse *p, char **tok, int n)
{
	int k;
	char err[256];
	struct buf e;

	if (n < 4) {
		rp_error(p, "usage: meta NAME EXPRESSION score N|action ACTION");
		return;
	}
	if (!rp_symbol_ok(tok[1])) {
		rp_error(p, "bad meta name \"%s\" (A-Z, 0-9, _)", tok[1]);
		return;
	}
	for (k = 2; k < n; k++)
		if (strcmp(tok[k], "score") == 0 || strcmp(tok[k], "action") == 0)
			break;
	buf_init(&e, RULES_MAX_LINE);
	for (int i = 2; i < k; i++)
		buf_printf(&e, "%s ", tok[i]);
	struct meta_expr *x = meta_compile(e.data ? e.data : "", err, sizeof(err));
	buf_free(&e);
	if (x == NULL) {
		rp_error(p, "meta %s: %s", tok[1], err);
		return;
	}
	for (size_t i = 0; i < meta_nsyms(x); i++)
		if (strcmp(meta_sym(x, i), tok[1]) == 0) {
			rp_error(p, "meta %s refers to itself", tok[1]);
			meta_free(x);
			return;
		}
	if (rp_name_free(p, tok[1]) != 0 || rp_outcome(p, tok[1], tok + k,
	    n - k) != 0) {
		meta_free(x);
		return;
	}
	p->r->meta = xrealloc(p->r->meta, (p->r->nmeta + 1) * sizeof(*p->r->meta));
	struct rules_meta *m = &p->r->meta[p->r->nmeta++];
	m->name = xstrdup(tok[1]);
	m->expr = x;
	m->file = p->fileno;
	m->line = p->line;
}

/* ---- State directives: ratelimit, harvest, greylist (see rules.h). ---- */

static const char *const rl_key_names[RL_KEY_COUNT] = {
	"ip", "net", "sender", "sender_domain", "auth_user", "rcpt_per_msg",
	"msg_per_conn", "conn_per_ip",
};

/* Settings of "harvest NAME VALUE" and "greylist NAME VALUE": kind 'd'
 * duration, 'n' count, 'b' on/off. */
static const struct {
	const char	*section, *name;
	char		 kind;
} rp_params[] = {
	{ "harvest", "threshold", 'n' }, { "harvest", "window", 'd' },
	{ "harvest", "block", 'd' }, { "harvest", "tarpit_ms", 'n' },
	{ "harvest", "tarpit_max_ms", 'n' },
	{ "greylist", "enable", 'b' }, { "greylist", "delay", 'd' },
	{ "greylist", "retry_window", 'd' }, { "greylist", "expiry", 'd' },
	{ "greylist", "awl_passes", 'n' }, { "greylist", "awl_expiry", 'd' },
	{ "greylist", "skip_spf_pass", 'b' },
};

const char *
rules_rl_key_name(enum rules_rl_key k)
{
	return (unsigned)k < RL_KEY_COUNT ? rl_key_names[k] : "?";
}

/* rp_duration - "90", "90s", "15m", "2h", "7d" in seconds; -1 if bad. */
static long
rp_duration(const char *s)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || v < 0 || v > 100L * 365 * 86400)
		return -1;
	switch (*end) {
	case '\0': case 's':	break;
	case 'm':		v *= 60; break;
	case 'h':		v *= 3600; break;
	case 'd':		v *= 86400; break;
	default:		return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	return v;
}

static void
rp_ratelimit(struct rparse *p, char **tok, int n)
{
	struct rules *r = p->r;
	struct rules_ratelimit *rl = NULL;
	int key = -1;
	long limit, window = 0;
	char *slash, *end;

	if (n < 4 || n > 5) {
		rp_error(p, "usage: ratelimit NAME KEY LIMIT[/WINDOW] [\"451 4.7.1 text\"]");
		return;
	}
	for (int i = 0; i < RL_KEY_COUNT; i++)
		if (strcmp(tok[2], rl_key_names[i]) == 0)
			key = i;
	if (key < 0) {
		rp_error(p, "ratelimit %s: unknown key \"%s\" (ip, net, sender, "
		    "sender_domain, auth_user, rcpt_per_msg, msg_per_conn, "
		    "conn_per_ip)", tok[1], tok[2]);
		return;
	}
	if ((slash = strchr(tok[3], '/')) != NULL)
		*slash++ = '\0';
	errno = 0;
	limit = strtol(tok[3], &end, 10);
	if (errno != 0 || *end != '\0' || end == tok[3] || limit < 1 ||
	    limit > 1000000000) {
		rp_error(p, "ratelimit %s: bad limit \"%s\"", tok[1], tok[3]);
		return;
	}
	if (slash != NULL && ((window = rp_duration(slash)) <= 0)) {
		rp_error(p, "ratelimit %s: bad window \"%s\"", tok[1], slash);
		return;
	}
	if (slash == NULL && key != RL_RCPT_PER_MSG && key != RL_MSG_PER_CONN) {
		rp_error(p, "ratelimit %s: %s needs a window (LIMIT/WINDOW)", tok[1],
		    tok[2]);
		return;
	}
	if (n == 5) {
		char rc[4], xc[16];
		const char *text;
		if (rules_parse_reply(tok[4], rc, xc, &text) != 0) {
			rp_error(p, "ratelimit %s: bad reply \"%s\"", tok[1], tok[4]);
			return;
		}
	}
	for (size_t i = 0; i < r->nrl; i++)
		if (strcmp(r->rl[i].name, tok[1]) == 0)
			rl = &r->rl[i];
	if (rl != NULL && rl->file == p->fileno) {
		rp_error(p, "ratelimit %s already defined at line %d", tok[1],
		    rl->line);
		return;
	}
	if (rl == NULL) {
		r->rl = xrealloc(r->rl, (r->nrl + 1) * sizeof(*r->rl));
		rl = &r->rl[r->nrl++];
		memset(rl, 0, sizeof(*rl));
		rl->name = xstrdup(tok[1]);
	}
	free(rl->reply);
	rl->reply = n == 5 ? xstrdup(tok[4]) : NULL;
	rl->key = (enum rules_rl_key)key;
	rl->limit = limit;
	rl->window = window;
	rl->file = p->fileno;
	rl->line = p->line;
}

static void
rp_param(struct rparse *p, char **tok, int n)
{
	struct rules *r = p->r;
	int k = -1;
	long v;

	for (size_t i = 0; i < ARRAY_LEN(rp_params); i++)
		if (strcmp(rp_params[i].section, tok[0]) == 0 && n > 1 &&
		    strcmp(rp_params[i].name, tok[1]) == 0)
			k = (int)i;
	if (n != 3 || k < 0) {
		rp_error(p, "usage: %s SETTING VALUE (see mxwarden.rules(5))", tok[0]);
		return;
	}
	if (rp_params[k].kind == 'b') {
		v = strcmp(tok[2], "on") == 0 || strcmp(tok[2], "yes") == 0;
		if (!v && strcmp(tok[2], "off") != 0 && strcmp(tok[2], "no") != 0) {
			rp_error(p, "%s %s: \"on\" or \"off\"", tok[0], tok[1]);
			return;
		}
	} else if ((v = rp_duration(tok[2])) < 0 ||
	    (rp_params[k].kind == 'n' && !isdigit((unsigned char)
	    tok[2][strlen(tok[2]) - 1]))) {
		rp_error(p, "%s %s: bad value \"%s\"", tok[0], tok[1], tok[2]);
		return;
	}
	for (size_t i = 0; i < r->nparam; i++)
		if (r->param[i].idx == k) {
			if (r->param[i].file == p->fileno) {
				rp_error(p, "%s %s already set at line %d", tok[0],
				    tok[1], r->param[i].line);
				return;
			}
			r->param[i].value = v;
			r->param[i].file = p->fileno;
			r->param[i].line = p->line;
			return;
		}
	r->param = xrealloc(r->param, (r->nparam + 1) * sizeof(*r->param));
	r->param[r->nparam++] = (struct rules_param){ .idx = k, .value = v,
	    .file = p->fileno, .line = p->line };
}

size_t
rules_ratelimit_count(const struct rules *r)
{
	return r->nrl;
}

const struct rules_ratelimit *
rules_ratelimit_get(const struct rules *r, size_t i)
{
	return i < r->nrl ? &r->rl[i] : NULL;
}

long
rules_param(const struct rules *r, const char *section, const char *name,
    long dflt)
{
	for (size_t i = 0; i < r->nparam; i++) {
		int k = r->param[i].idx;
		if (strcmp(rp_params[k].section, section) == 0 &&
		    strcmp(rp_params[k].name, name) == 0)
			return r->param[i].value;
	}
	return dflt;
}

static void
rules_state_free(struct rules *r)
{
	for (size_t i = 0; i < r->nrl; i++) {
		free(r->rl[i].name);
		free(r->rl[i].reply);
	}
	free(r->rl);
	free(r->param);
}

static void
rp_line(struct rparse *p, char *line)
{
	char *tok[RULES_MAX_TOKENS];
	const char *w = line;

	while (isspace((unsigned char)*w))
		w++;
	if (strncmp(w, "rule", 4) == 0 && isspace((unsigned char)w[4])) {
		rp_rule(p, (char *)w + 4);
		return;
	}
	int n = rp_tokenize(p, line, tok, (int)ARRAY_LEN(tok));

	if (n <= 0)
		return;
	if (strcmp(tok[0], "score") == 0)
		rp_score(p, tok, n);
	else if (strcmp(tok[0], "action") == 0)
		rp_action(p, tok, n);
	else if (strcmp(tok[0], "threshold") == 0)
		rp_threshold(p, tok, n);
	else if (strcmp(tok[0], "list") == 0)
		rp_list(p, tok, n);
	else if (strcmp(tok[0], "ratelimit") == 0)
		rp_ratelimit(p, tok, n);
	else if (strcmp(tok[0], "harvest") == 0 || strcmp(tok[0], "greylist") == 0)
		rp_param(p, tok, n);
	else if (strcmp(tok[0], "meta") == 0)
		rp_meta(p, tok, n);
	else if (strcmp(tok[0], "dnsbl") == 0 || strcmp(tok[0], "dnswl") == 0 ||
	    strcmp(tok[0], "rhsbl") == 0)
		rp_dnsbl(p, tok, n);
	else
		rp_error(p, "unknown directive \"%s\" (score, action, threshold, "
		    "list, rule, meta, dnsbl, dnswl, rhsbl)", tok[0]);
}

static void
rp_file(struct rparse *p, FILE *fp)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct buf logical;
	int start = 0;

	buf_init(&logical, RULES_MAX_LINE);
	/* A line ending in a backslash continues on the next. */
	while ((len = getline(&line, &cap, fp)) >= 0) {
		p->line++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (memchr(line, '\0', (size_t)len) != NULL) {
			rp_error(p, "NUL byte in line");
			buf_reset(&logical);
			continue;
		}
		if (logical.len == 0)
			start = p->line;
		int cont = len > 0 && line[len - 1] == '\\';
		if (cont)
			line[--len] = ' ';
		if (buf_append(&logical, line, (size_t)len) != 0) {
			rp_error(p, "logical line longer than %d bytes", RULES_MAX_LINE);
			buf_reset(&logical);
			continue;
		}
		if (cont)
			continue;
		int here = p->line;
		p->line = start;
		rp_line(p, logical.data);
		p->line = here;
		buf_reset(&logical);
	}
	if (logical.len > 0) {
		p->line = start;
		rp_line(p, logical.data);
	}
	buf_free(&logical);
	free(line);
}

static int
rules_sym_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rules_sym *)a)->name,
	    ((const struct rules_sym *)b)->name);
}

struct rules *
rules_load(const char *main_file, const char *local_file, unsigned flags,
    char *errs, size_t errlen)
{
	struct rules *r = xcalloc(1, sizeof(*r));
	struct buf eb;
	struct rparse p = { .r = r, .errs = &eb, .flags = flags };
	const char *files[2] = { main_file, local_file };

	buf_init(&eb, 1 << 20);
	for (int i = 0; i < 2; i++) {
		if (files[i] == NULL || files[i][0] == '\0')
			continue;
		FILE *fp = fopen(files[i], "r");
		if (fp == NULL) {
			if (i == 1 && errno == ENOENT)
				continue;	/* the local file is optional */
			buf_printf(&eb, "%s: cannot open: %s\n", files[i],
			    strerror(errno));
			p.nerr++;
			continue;
		}
		p.file = files[i];
		p.fileno = i;
		p.line = 0;
		rp_file(&p, fp);
		fclose(fp);
	}
	rp_index_free(&p.syms);
	rp_index_free(&p.names);
	if (r->nsym > 1)
		qsort(r->sym, r->nsym, sizeof(*r->sym), rules_sym_cmp);
	/* One match context with the limits, shared read-only by every
	 * match of every thread. */
	r->mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(r->mctx, RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(r->mctx, RULES_DEPTH_LIMIT);
	pcre2_set_heap_limit(r->mctx, RULES_HEAP_LIMIT_KB);
	for (int i = 0; i < 2; i++)
		r->file_names[i] = files[i] ? xstrdup(files[i]) : NULL;
	if (errs && errlen)
		str_copy(errs, eb.data ? eb.data : "", errlen);
	buf_free(&eb);
	if (p.nerr > 0) {
		rules_free(r);
		return NULL;
	}
	return r;
}

void
rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nsym; i++) {
		free(r->sym[i].name);
		free(r->sym[i].act.reply);
	}
	free(r->sym);
	for (size_t i = 0; i < r->nlist; i++) {
		for (size_t j = 0; j < r->list[i].n; j++)
			free(r->list[i].items[j]);
		free(r->list[i].items);
		free(r->list[i].name);
	}
	free(r->list);
	for (int i = 0; i < RT_COUNT; i++)
		free(r->thr[i].reply);
	rules_state_free(r);
	for (size_t i = 0; i < r->nrx; i++)
		rules_rx_clear(&r->rx[i]);
	free(r->rx);
	for (size_t i = 0; i < r->nmeta; i++) {
		free(r->meta[i].name);
		meta_free(r->meta[i].expr);
	}
	free(r->meta);
	dnsbl_set_free(r->dnsbl);
	pcre2_match_context_free(r->mctx);
	free(r->file_names[0]);
	free(r->file_names[1]);
	free(r);
}

static const struct rules_sym *
rules_sym_find(const struct rules *r, const char *name)
{
	struct rules_sym key = { .name = (char *)name };

	if (r->nsym == 0)
		return NULL;
	return bsearch(&key, r->sym, r->nsym, sizeof(*r->sym), rules_sym_cmp);
}

double
rules_score(const struct rules *r, const char *symbol)
{
	const struct rules_sym *s = rules_sym_find(r, symbol);

	return s && s->has_score ? s->score : 0.0;
}

int
rules_has_score(const struct rules *r, const char *symbol)
{
	const struct rules_sym *s = rules_sym_find(r, symbol);

	return s != NULL && s->has_score;
}

const struct rules_action *
rules_action(const struct rules *r, const char *symbol)
{
	const struct rules_sym *s = rules_sym_find(r, symbol);

	return s && s->act.action != VERDICT_CONTINUE ? &s->act : NULL;
}

double
rules_threshold(const struct rules *r, enum rules_threshold which, int *set,
    const char **reply)
{
	*set = r->thr[which].set;
	if (reply)
		*reply = r->thr[which].reply;
	return r->thr[which].value;
}

static const struct rules_list *
rules_list_find(const struct rules *r, const char *name)
{
	for (size_t i = 0; i < r->nlist; i++)
		if (strcmp(r->list[i].name, name) == 0)
			return &r->list[i];
	return NULL;
}

size_t
rules_list_count(const struct rules *r, const char *list)
{
	const struct rules_list *l = rules_list_find(r, list);

	return l != NULL ? l->n : 0;
}

int
rules_list_exists(const struct rules *r, const char *list)
{
	return rules_list_find(r, list) != NULL;
}

int
rules_ip_in_cidr(const char *ip, const char *cidr)
{
	unsigned char a[16], n[16];
	char net[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(cidr, '/');
	int fam, alen, plen, ifam;
	size_t nl = slash ? (size_t)(slash - cidr) : strlen(cidr);

	if (nl >= INET6_ADDRSTRLEN)
		return -1;
	memcpy(net, cidr, nl);
	net[nl] = '\0';
	if (inet_pton(AF_INET, net, n) == 1) {
		fam = AF_INET;
		alen = 4;
	} else if (inet_pton(AF_INET6, net, n) == 1) {
		fam = AF_INET6;
		alen = 16;
	} else {
		return -1;
	}
	plen = alen * 8;
	if (slash) {
		char *end;
		long v;
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		v = strtol(slash + 1, &end, 10);
		if (*end != '\0' || v < 0 || v > plen)
			return -1;
		plen = (int)v;
	}
	if (inet_pton(AF_INET, ip, a) == 1) {
		ifam = AF_INET;
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		ifam = AF_INET6;
		/* An IPv4-mapped client matches IPv4 networks. */
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0xff, 0xff };
		if (fam == AF_INET && memcmp(a, mapped, 12) == 0) {
			memmove(a, a + 12, 4);
			ifam = AF_INET;
		}
	} else {
		return 0;
	}
	if (ifam != fam)
		return 0;
	for (int i = 0; i < plen / 8; i++)
		if (a[i] != n[i])
			return 0;
	if (plen % 8) {
		unsigned char mask = (unsigned char)(0xff << (8 - plen % 8));
		if ((a[plen / 8] & mask) != (n[plen / 8] & mask))
			return 0;
	}
	return 1;
}

int
rules_list_has_ip(const struct rules *r, const char *list, const char *ip)
{
	const struct rules_list *l = rules_list_find(r, list);

	if (l == NULL || ip == NULL)
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (rules_ip_in_cidr(ip, l->items[i]) == 1)
			return 1;
	return 0;
}

int
rules_list_has_domain(const struct rules *r, const char *list,
    const char *domain)
{
	const struct rules_list *l = rules_list_find(r, list);

	if (l == NULL || domain == NULL)
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		const char *e = l->items[i];
		if (e[0] == '.') {
			if (str_is_subdomain(domain, e + 1))
				return 1;
		} else if (strcasecmp(domain, e) == 0) {
			return 1;
		}
	}
	return 0;
}

/* rules_var - value of one expansion variable. */
static const char *
rules_var(const char *name, size_t len, const struct txn *t, const char *symbol,
    const char *hostname)
{
#define V(n)	(len == sizeof(n) - 1 && strncmp(name, n, len) == 0)
	if (V("client_ip"))	return t->client_ip;
	if (V("helo"))		return t->helo;
	if (V("from"))		return t->mail_from;
	if (V("from_domain"))	return t->dmarc.from_domain ? t->dmarc.from_domain :
				    t->from_domain ? t->from_domain : t->mail_domain;
	if (V("rcpt"))		return t->nrcpt ? t->rcpt[t->nrcpt - 1] : NULL;
	if (V("symbol"))	return symbol;
	if (V("hostname"))	return hostname;
#undef V
	return NULL;
}

void
rules_expand(const char *tmpl, const struct txn *t, const char *symbol,
    char *out, size_t outlen)
{
	size_t o = 0;
	const char *hostname = t->our_hostname;

	if (outlen == 0)
		return;
	for (const char *s = tmpl; *s && o + 1 < outlen; s++) {
		const char *val = NULL;
		if (s[0] == '%' && s[1] == '%') {
			out[o++] = '%';
			s++;
			continue;
		}
		if (s[0] == '%' && s[1] == '{') {
			const char *end = strchr(s, '}');
			if (end != NULL) {
				val = rules_var(s + 2, (size_t)(end - s - 2), t,
				    symbol, hostname);
				s = end;
				for (const char *v = val ? val : ""; *v &&
				    o + 1 < outlen; v++)
					/* Peer-supplied text: printable ASCII only. */
					out[o++] = (*v >= 0x20 && *v < 0x7f) ? *v : '?';
				continue;
			}
		}
		out[o++] = *s;
	}
	out[o] = '\0';
}
