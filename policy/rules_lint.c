/*
 * rules_lint.c - the "unreachable after a whitelist" part of the
 * configtest lint (rules_lint() in rules_eval.c calls it).
 *
 * Whitelists short-circuit: the first symbol with an immediate action
 * decides (policy/engine.c), whitelist_clients is tested at connect
 * before any rule, and a regex rule runs in file order within its
 * stage. So some rules can never decide anything:
 *   - a blacklist_clients entry inside a whitelist_clients entry;
 *   - a client_ip rule whose list lies inside whitelist_clients;
 *   - a rule after an accept rule on the same target whose pattern is
 *     the same, or whose list lies inside the accept rule's list;
 *   - every rule after an accept rule whose pattern matches the empty
 *     string.
 * Deciding whether one regex implies another is not possible in
 * general: only these certain cases are reported, as warnings.
 *
 * Owns nothing; reads an immutable rule set. Thread safety: none
 * needed (configtest and reload run it once).
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "rules_int.h"
#include "util.h"

static const char *
rl_fname(const struct rules *r, int file)
{
	return file >= 0 && file < 2 && r->file_names[file] ?
	    r->file_names[file] : "?";
}

/* rl_list - the list NAME in force (the last definition), or NULL. */
static const struct rules_list *
rl_list(const struct rules *r, const char *name)
{
	const struct rules_list *l = NULL;

	for (size_t i = 0; i < r->nlist; i++)
		if (strcmp(r->list[i].name, name) == 0)
			l = &r->list[i];
	return l;
}

/* rl_prefix - the prefix length of an address or CIDR entry, -1 if bad. */
static int
rl_prefix(const char *e)
{
	const char *slash = strchr(e, '/');

	if (slash == NULL)
		return strchr(e, ':') ? 128 : 32;
	char *end;
	long n = strtol(slash + 1, &end, 10);
	return *end == '\0' && n >= 0 && n <= 128 ? (int)n : -1;
}

static int
rl_is_net(const char *e)
{
	unsigned char a[16];

	return strchr(e, '/') != NULL || inet_pton(AF_INET, e, a) == 1 ||
	    inet_pton(AF_INET6, e, a) == 1;
}

static int
rl_has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* rl_domain_covered - domain entry e (".d" = d and below) inside w. */
static int
rl_domain_covered(const char *e, const char *w)
{
	if (w[0] == '.')
		return str_is_subdomain(e[0] == '.' ? e + 1 : e, w + 1);
	return e[0] != '.' && strcasecmp(e, w) == 0;
}

/* rl_entry_covered - every value entry e matches is matched by w. */
static int
rl_entry_covered(const char *e, const char *w)
{
	int enet = rl_is_net(e), wnet = rl_is_net(w);

	if (enet || wnet) {
		if (!enet || !wnet)
			return 0;
		char addr[64];
		str_copy(addr, e, sizeof(addr));
		char *slash = strchr(addr, '/');
		if (slash)
			*slash = '\0';
		int pe = rl_prefix(e), pw = rl_prefix(w);
		return pe >= 0 && pw >= 0 && pe >= pw &&
		    (strchr(addr, ':') != NULL) == (strchr(w, ':') != NULL) &&
		    rules_ip_in_cidr(addr, w) == 1;
	}
	const char *eat = strrchr(e, '@'), *wat = strrchr(w, '@');
	if (wat == NULL) {		/* w is a domain entry */
		if (eat != NULL)
			return !rl_has_glob(eat + 1) &&
			    rl_domain_covered(eat + 1, w);
		return rl_domain_covered(e, w);
	}
	if (eat == NULL)		/* a domain is not inside an address */
		return 0;
	if (w[0] == '@' || strncmp(w, "*@", 2) == 0)
		return !rl_has_glob(eat + 1) && strcasecmp(eat + 1, wat + 1) == 0;
	if (strcasecmp(e, w) == 0)
		return 1;
	return !rl_has_glob(e) && e[0] != '@' &&
	    fnmatch(w, e, FNM_CASEFOLD) == 0;
}

/* rl_list_covered - a has entries and every one is inside b. */
static int
rl_list_covered(const struct rules_list *a, const struct rules_list *b)
{
	if (a == NULL || b == NULL || a->n == 0)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		size_t k;
		for (k = 0; k < b->n; k++)
			if (rl_entry_covered(a->items[i], b->items[k]))
				break;
		if (k == b->n)
			return 0;
	}
	return 1;
}

static int
rl_accepts(const struct rules *r, const char *sym)
{
	const struct rules_action *a = rules_action(r, sym);

	return a != NULL && a->action == VERDICT_ACCEPT;
}

static int
rl_same_target(const struct rules_rx *a, const struct rules_rx *b)
{
	if (a->target != b->target)
		return 0;
	return a->target != RTG_HEADER ||
	    strcasecmp(a->header ? a->header : "", b->header ? b->header : "") == 0;
}

/* rl_blacklist - blacklist_clients entries inside whitelist_clients. */
static int
rl_blacklist(const struct rules *r, struct buf *b)
{
	const struct rules_list *bl = rl_list(r, "blacklist_clients");
	const struct rules_list *wl = rl_list(r, "whitelist_clients");
	int n = 0;

	if (bl == NULL || wl == NULL)
		return 0;
	for (size_t i = 0; i < bl->n; i++)
		for (size_t k = 0; k < wl->n; k++) {
			if (!rl_entry_covered(bl->items[i], wl->items[k]))
				continue;
			buf_printf(b, "%s:%d: warning: blacklist_clients entry %s "
			    "is unreachable: whitelist_clients entry %s (%s:%d) "
			    "accepts those clients first\n", rl_fname(r, bl->file),
			    bl->line, bl->items[i], wl->items[k],
			    rl_fname(r, wl->file), wl->line);
			n++;
			break;
		}
	return n;
}

/* rl_after_accept - rules that an earlier accept rule shadows. */
static int
rl_after_accept(const struct rules *r, size_t wi, struct buf *b)
{
	const struct rules_rx *w = &r->rx[wi];
	int n = 0;

	for (size_t i = wi + 1; i < r->nrx; i++) {
		const struct rules_rx *x = &r->rx[i];
		int same = rl_same_target(x, w) && (
		    (x->code && w->code && strcmp(x->pattern, w->pattern) == 0) ||
		    (x->list && w->list && rl_list_covered(rl_list(r, x->list),
		    rl_list(r, w->list))));
		if (!same)
			continue;
		buf_printf(b, "%s:%d: warning: rule %s is unreachable: every "
		    "message it matches is accepted first by rule %s (%s:%d)\n",
		    rl_fname(r, x->file), x->line, x->name, w->name,
		    rl_fname(r, w->file), w->line);
		n++;
	}
	return n;
}

/* rl_accept_all - an accept rule that matches the empty string. */
static int
rl_accept_all(const struct rules *r, size_t wi, pcre2_match_data *md,
    struct buf *b)
{
	const struct rules_rx *w = &r->rx[wi];
	enum rules_stage st = rules_target_stage(w->target);
	size_t later = r->nmeta;

	if (w->code == NULL || pcre2_match(w->code, (PCRE2_SPTR)"", 0, 0, 0, md,
	    r->mctx) < 0)
		return 0;
	for (size_t i = 0; i < r->nrx; i++) {
		enum rules_stage s = rules_target_stage(r->rx[i].target);
		if (s > st || (s == st && i > wi))
			later++;
	}
	if (later == 0)
		return 0;
	buf_printf(b, "%s:%d: warning: rule %s accepts every message that has a "
	    "%s: %zu rule(s) evaluated after it never decide for those\n",
	    rl_fname(r, w->file), w->line, w->name, rules_target_name(w->target),
	    later);
	return 1;
}

int
rules_lint_unreachable(const struct rules *r, struct buf *b)
{
	const struct rules_list *wl = rl_list(r, "whitelist_clients");
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	int n = rl_blacklist(r, b);

	for (size_t i = 0; i < r->nrx; i++) {
		const struct rules_rx *x = &r->rx[i];
		if (x->target == RTG_CLIENT_IP && x->list != NULL &&
		    !rl_accepts(r, x->name) &&
		    rl_list_covered(rl_list(r, x->list), wl)) {
			buf_printf(b, "%s:%d: warning: rule %s is unreachable: every "
			    "client in list %s is in whitelist_clients\n",
			    rl_fname(r, x->file), x->line, x->name, x->list);
			n++;
		}
		if (!rl_accepts(r, x->name))
			continue;
		n += rl_after_accept(r, i, b);
		n += rl_accept_all(r, i, md, b);
	}
	pcre2_match_data_free(md);
	return n;
}
