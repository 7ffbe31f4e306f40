/*
 * meta.h - boolean expressions over symbols for "meta" rules:
 *
 *   SPF_FAIL && !DKIM_PASS
 *   (SUBJ_LOTTERY || BODY_WALLET) && !DMARC_PASS
 *
 * Operators: ! (not), && (and), || (or), parentheses; && binds tighter
 * than ||. Operands are symbol names (A-Z, 0-9, _). An expression is
 * compiled once at load into postfix form and is then immutable.
 * Thread safety: a compiled expression is read-only; meta_eval is
 * reentrant.
 */
#ifndef MXW_META_H
#define MXW_META_H

#include <stddef.h>

#define META_MAX_TERMS	64	/* operands and operators per expression */

struct meta_expr;

/* meta_compile - NULL and a reason in err when text is malformed. */
struct meta_expr *meta_compile(const char *text, char *err, size_t errlen);
void		 meta_free(struct meta_expr *m);

/* meta_eval - the value of the expression; has(arg, name) tells
 * whether a symbol is present. */
int		 meta_eval(const struct meta_expr *m,
		    int (*has)(void *arg, const char *name), void *arg);

/* The symbols the expression names (for lint). */
size_t		 meta_nsyms(const struct meta_expr *m);
const char	*meta_sym(const struct meta_expr *m, size_t i);

#endif
