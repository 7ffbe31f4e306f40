/*
 * rules.c - load and query the rule set (see rules.h for the language).
 *
 * Loading happens at start-up, in `configtest` and on reload, in one
 * thread; the result is immutable and read by every thread without
 * locks. Lookups are binary searches over sorted arrays.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "rules.h"
#include "util.h"

#define RULES_MAX_TOKENS	4096
#define RULES_MAX_LINE		65536
#define RULES_MAX_LIST_FILE	(16 << 20)

struct rules_sym {
	char			*name;
	double			 score;
	int			 has_score;
	struct rules_action	 act;
	/* file index and line of the definitions, for duplicate checks */
	int			 score_file, score_line;
	int			 act_file, act_line;
};

struct rules_list {
	char	 *name;
	char	**items;
	size_t	  n;
	int	  file, line;
};

struct rules {
	struct rules_sym	*sym;
	size_t			 nsym;
	struct rules_list	*list;
	size_t			 nlist;
	struct {
		int	 set;
		double	 value;
		char	*reply;
		int	 file, line;
	} thr[RT_COUNT];
};

static const char *const thr_names[RT_COUNT] = {
	"add_header", "quarantine", "tempfail", "reject"
};

/* Parser state for one file. */
struct rparse {
	struct rules	*r;
	const char	*file;
	int		 fileno;
	int		 line;
	struct buf	*errs;
	int		 nerr;
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

static struct rules_sym *
rules_sym_get(struct rules *r, const char *name, int create)
{
	for (size_t i = 0; i < r->nsym; i++)
		if (strcmp(r->sym[i].name, name) == 0)
			return &r->sym[i];
	if (!create)
		return NULL;
	r->sym = xrealloc(r->sym, (r->nsym + 1) * sizeof(*r->sym));
	struct rules_sym *s = &r->sym[r->nsym++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
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
	struct rules_sym *s = rules_sym_get(p->r, tok[1], 1);
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
	struct rules_sym *s = rules_sym_get(p->r, tok[1], 1);
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

static void
rp_line(struct rparse *p, char *line)
{
	char *tok[RULES_MAX_TOKENS];
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
	else
		rp_error(p, "unknown directive \"%s\" (score, action, threshold, list)",
		    tok[0]);
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
rules_load(const char *main_file, const char *local_file, char *errs,
    size_t errlen)
{
	struct rules *r = xcalloc(1, sizeof(*r));
	struct buf eb;
	struct rparse p = { .r = r, .errs = &eb };
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
	if (r->nsym > 1)
		qsort(r->sym, r->nsym, sizeof(*r->sym), rules_sym_cmp);
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
