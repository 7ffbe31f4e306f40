/*
 * meta.c - compile and evaluate the boolean symbol expressions of meta
 * rules (see meta.h for the language).
 *
 * Called by the rules loader (policy/rules.c) at load time and by the
 * rule evaluator at end of message. A compiled expression owns its
 * postfix program (an array of items, each an operator or a symbol
 * name). Recursive descent with a depth bound; evaluation uses a fixed
 * stack of META_MAX_TERMS.
 * Thread safety: compiled expressions are immutable and shared.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "util.h"

enum meta_op { MO_SYM, MO_NOT, MO_AND, MO_OR };

struct meta_item {
	enum meta_op	 op;
	char		*sym;
};

struct meta_expr {
	struct meta_item items[META_MAX_TERMS];
	size_t		 n;
	char		*syms[META_MAX_TERMS];
	size_t		 nsyms;
};

struct meta_parse {
	const char	*s;
	struct meta_expr *m;
	char		*err;
	size_t		 errlen;
	int		 failed;
	int		 depth;
};

static void
mp_fail(struct meta_parse *p, const char *why)
{
	if (!p->failed)
		str_fmt(p->err, p->errlen, "%s at \"%.20s\"", why, p->s);
	p->failed = 1;
}

static void
mp_skip(struct meta_parse *p)
{
	while (isspace((unsigned char)*p->s))
		p->s++;
}

static void
mp_emit(struct meta_parse *p, enum meta_op op, char *sym)
{
	if (p->m->n == META_MAX_TERMS) {
		free(sym);
		mp_fail(p, "expression too long");
		return;
	}
	p->m->items[p->m->n].op = op;
	p->m->items[p->m->n].sym = sym;
	p->m->n++;
	if (sym != NULL) {
		for (size_t i = 0; i < p->m->nsyms; i++)
			if (strcmp(p->m->syms[i], sym) == 0)
				return;
		p->m->syms[p->m->nsyms++] = sym;
	}
}

static void mp_or(struct meta_parse *p);

/* unary := '!' unary | '(' or ')' | SYMBOL */
static void
mp_unary(struct meta_parse *p)
{
	mp_skip(p);
	if (p->failed)
		return;
	if (++p->depth > META_MAX_TERMS) {
		mp_fail(p, "expression nested too deeply");
		return;
	}
	if (*p->s == '!') {
		p->s++;
		mp_unary(p);
		mp_emit(p, MO_NOT, NULL);
	} else if (*p->s == '(') {
		p->s++;
		mp_or(p);
		mp_skip(p);
		if (*p->s != ')')
			mp_fail(p, "missing ')'");
		else
			p->s++;
	} else if (isupper((unsigned char)*p->s)) {
		const char *b = p->s;
		while (isupper((unsigned char)*p->s) || isdigit((unsigned char)*p->s) ||
		    *p->s == '_')
			p->s++;
		mp_emit(p, MO_SYM, xstrndup(b, (size_t)(p->s - b)));
	} else {
		mp_fail(p, *p->s ? "expected a SYMBOL, '!' or '('" :
		    "expression ends early");
	}
	p->depth--;
}

/* and := unary ('&&' unary)* */
static void
mp_and(struct meta_parse *p)
{
	mp_unary(p);
	for (;;) {
		mp_skip(p);
		if (p->failed || strncmp(p->s, "&&", 2) != 0)
			return;
		p->s += 2;
		mp_unary(p);
		mp_emit(p, MO_AND, NULL);
	}
}

/* or := and ('||' and)* */
static void
mp_or(struct meta_parse *p)
{
	mp_and(p);
	for (;;) {
		mp_skip(p);
		if (p->failed || strncmp(p->s, "||", 2) != 0)
			return;
		p->s += 2;
		mp_and(p);
		mp_emit(p, MO_OR, NULL);
	}
}

struct meta_expr *
meta_compile(const char *text, char *err, size_t errlen)
{
	struct meta_expr *m = xcalloc(1, sizeof(*m));
	struct meta_parse p = { .s = text, .m = m, .err = err, .errlen = errlen };

	mp_or(&p);
	mp_skip(&p);
	if (!p.failed && *p.s != '\0')
		mp_fail(&p, "unexpected text");
	if (p.failed) {
		meta_free(m);
		return NULL;
	}
	return m;
}

void
meta_free(struct meta_expr *m)
{
	if (m == NULL)
		return;
	/* Symbol strings are owned through syms[] (items share them). */
	for (size_t i = 0; i < m->nsyms; i++)
		free(m->syms[i]);
	for (size_t i = 0; i < m->n; i++) {
		int shared = 0;
		for (size_t j = 0; j < m->nsyms && m->items[i].sym; j++)
			if (m->items[i].sym == m->syms[j])
				shared = 1;
		if (m->items[i].sym && !shared)
			free(m->items[i].sym);
	}
	free(m);
}

int
meta_eval(const struct meta_expr *m, int (*has)(void *arg, const char *name),
    void *arg)
{
	unsigned char st[META_MAX_TERMS];
	size_t sp = 0;

	for (size_t i = 0; i < m->n; i++) {
		switch (m->items[i].op) {
		case MO_SYM:
			st[sp++] = has(arg, m->items[i].sym) != 0;
			break;
		case MO_NOT:
			st[sp - 1] = !st[sp - 1];
			break;
		case MO_AND:
			sp--;
			st[sp - 1] = st[sp - 1] && st[sp];
			break;
		case MO_OR:
			sp--;
			st[sp - 1] = st[sp - 1] || st[sp];
			break;
		}
	}
	return sp == 1 ? st[0] : 0;
}

size_t
meta_nsyms(const struct meta_expr *m)
{
	return m->nsyms;
}

const char *
meta_sym(const struct meta_expr *m, size_t i)
{
	return i < m->nsyms ? m->syms[i] : NULL;
}
