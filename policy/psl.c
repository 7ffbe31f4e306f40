/*
 * psl.c - public suffix list loader and organizational-domain lookup.
 *
 * Used by dmarc.c (and later anything else that needs an organizational
 * domain). Owns the loaded rule sets: three sorted arrays of lower-case
 * strings (normal rules, wildcard rules without "*.", exception rules
 * without "!"), searched with bsearch. The algorithm is the list's own:
 * an exception rule wins; otherwise the matching rule with the most
 * labels; the implicit rule "*" when none matches.
 *
 * Thread safety: one loaded list per path per process (a registry
 * behind a mutex for open/close); lookups only read and need no lock.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psl.h"
#include "util.h"

struct psl_set {
	char	**v;
	size_t	 n, cap;
};

struct psl {
	struct psl_set	 rule, wild, excp;
	char		*path;		/* NULL: private (psl_from_text) */
	int		 refs;
	struct psl	*next;		/* in psl_loaded */
};

static pthread_mutex_t psl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct psl *psl_loaded;	/* lists loaded from files, by path */

static void
psl_set_add(struct psl_set *s, const char *v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = str_lower(xstrdup(v));
}

static int
psl_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
psl_set_has(const struct psl_set *s, const char *v)
{
	return s->n > 0 && bsearch(&v, s->v, s->n, sizeof(*s->v),
	    psl_cmp) != NULL;
}

static void
psl_set_free(struct psl_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

/* psl_line - add the rule on one line of the list (comments skipped). */
static void
psl_line(struct psl *p, char *line)
{
	char *r = line, *e;

	while (isspace((unsigned char)*r))
		r++;
	if (*r == '\0' || (r[0] == '/' && r[1] == '/'))
		return;
	for (e = r; *e != '\0' && !isspace((unsigned char)*e); e++)
		;
	*e = '\0';
	if (r[0] == '!')
		psl_set_add(&p->excp, r + 1);
	else if (r[0] == '*' && r[1] == '.')
		psl_set_add(&p->wild, r + 2);
	else
		psl_set_add(&p->rule, r);
}

/* psl_set_sort - sort a set; an empty one has no array (v is NULL),
 * which qsort must not be given. */
static void
psl_set_sort(struct psl_set *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(char *), psl_cmp);
}

static void
psl_sort(struct psl *p)
{
	psl_set_sort(&p->rule);
	psl_set_sort(&p->wild);
	psl_set_sort(&p->excp);
}

static void
psl_destroy(struct psl *p)
{
	psl_set_free(&p->rule);
	psl_set_free(&p->wild);
	psl_set_free(&p->excp);
	free(p->path);
	free(p);
}

struct psl *
psl_from_text(const char *text)
{
	struct psl *p = xcalloc(1, sizeof(*p));
	char *copy = xstrdup(text), *save = NULL, *line;

	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		psl_line(p, line);
	free(copy);
	psl_sort(p);
	p->refs = 1;
	return p;
}

static struct psl *
psl_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct psl *p;
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL) {
		str_fmt(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	while (getline(&line, &cap, f) >= 0)
		psl_line(p, line);
	free(line);
	fclose(f);
	if (p->rule.n == 0) {
		str_fmt(err, errlen, "%s: no rules", path);
		psl_destroy(p);
		return NULL;
	}
	psl_sort(p);
	p->path = xstrdup(path);
	return p;
}

struct psl *
psl_open(const char *path, char *err, size_t errlen)
{
	struct psl *p;

	pthread_mutex_lock(&psl_lock);
	for (p = psl_loaded; p != NULL; p = p->next)
		if (strcmp(p->path, path) == 0)
			break;
	if (p != NULL) {
		p->refs++;
	} else if ((p = psl_load(path, err, errlen)) != NULL) {
		p->refs = 1;
		p->next = psl_loaded;
		psl_loaded = p;
	}
	pthread_mutex_unlock(&psl_lock);
	return p;
}

void
psl_close(struct psl *p)
{
	int last;

	if (p == NULL)
		return;
	pthread_mutex_lock(&psl_lock);
	last = --p->refs == 0;
	if (last && p->path != NULL) {
		struct psl **pp = &psl_loaded;

		while (*pp != NULL && *pp != p)
			pp = &(*pp)->next;
		if (*pp != NULL)
			*pp = p->next;
	}
	pthread_mutex_unlock(&psl_lock);
	if (last)
		psl_destroy(p);
}

/* psl_suffix_labels - how many labels of name form its public suffix. */
static size_t
psl_suffix_labels(const struct psl *p, const char *name, size_t nlabels)
{
	const char *s = name, *parent;
	size_t k;

	/* An exception rule matching any suffix prevails. */
	for (k = nlabels, s = name; k > 0; k--) {
		if (psl_set_has(&p->excp, s))
			return k - 1;
		s = strchr(s, '.');
		s = s != NULL ? s + 1 : "";
	}
	/* Otherwise the longest match: scan from the whole name down. */
	for (k = nlabels, s = name; k > 0; k--) {
		parent = strchr(s, '.');
		if (psl_set_has(&p->rule, s) ||
		    (parent != NULL && psl_set_has(&p->wild, parent + 1)))
			return k;
		s = parent != NULL ? parent + 1 : "";
	}
	return 1;	/* the implicit rule "*" */
}

int
psl_org_domain(const struct psl *p, const char *name, char *out,
    size_t outlen)
{
	char buf[256];
	const char *s;
	size_t len, nlabels = 1, ps, skip;

	len = strlen(name);
	while (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(buf) || name[0] == '.')
		return -1;
	memcpy(buf, name, len);
	buf[len] = '\0';
	str_lower(buf);
	for (s = buf; *s != '\0'; s++)
		if (*s == '.')
			nlabels++;
	ps = psl_suffix_labels(p, buf, nlabels);
	if (ps >= nlabels)
		return str_copy(out, buf, outlen);
	/* keep ps + 1 labels: skip the first nlabels - ps - 1 */
	for (s = buf, skip = nlabels - ps - 1; skip > 0; skip--)
		s = strchr(s, '.') + 1;
	return str_copy(out, s, outlen);
}
