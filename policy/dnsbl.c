/*
 * dnsbl.c - DNSBL, DNSWL and RHSBL lookups (see dnsbl.h).
 *
 * Parsed by the rules loader (policy/rules.c) into a set owned by the
 * rule set; run by the rule evaluator (policy/rules_eval.c) at connect
 * (client IP) and at MAIL and end of message (sender and From domains).
 * All queries go through dns_query() (A records).
 *
 * Thread safety: the set is read-only after load except the per-zone
 * unhealthy_until time, read and written with atomics.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "txn.h"
#include "util.h"

enum dnsbl_kind { DK_DNSBL, DK_DNSWL, DK_RHSBL };

struct dnsbl_code {
	struct in_addr	 addr;
	double		 weight;
};

struct dnsbl_zone {
	enum dnsbl_kind	 kind;
	char		 symbol[80];
	char		*zone;
	struct dnsbl_code codes[DNSBL_MAX_CODES];
	size_t		 ncodes;
	int		 file;		/* rules file index, for overrides */
	_Atomic long	 unhealthy_until;
};

struct dnsbl_set {
	struct dnsbl_zone *z[DNSBL_MAX_ZONES];
	size_t		 n;
};

static const char *const kind_words[] = { "dnsbl", "dnswl", "rhsbl" };
static const char *const kind_prefix[] = { "DNSBL_", "DNSWL_", "RHSBL_" };

static int
dnsbl_parse_codes(struct dnsbl_zone *z, char **tok, int n, char *err,
    size_t errlen)
{
	for (int i = 0; i < n; i++) {
		char *eq = strchr(tok[i], '=');
		char addr[32], *end;
		if (eq == NULL || (size_t)(eq - tok[i]) >= sizeof(addr)) {
			str_fmt(err, errlen, "expected CODE=WEIGHT, not \"%s\"", tok[i]);
			return -1;
		}
		memcpy(addr, tok[i], (size_t)(eq - tok[i]));
		addr[eq - tok[i]] = '\0';
		if (z->ncodes == DNSBL_MAX_CODES) {
			str_fmt(err, errlen, "more than %d codes", DNSBL_MAX_CODES);
			return -1;
		}
		struct dnsbl_code *c = &z->codes[z->ncodes];
		if (inet_pton(AF_INET, addr, &c->addr) != 1 ||
		    (ntohl(c->addr.s_addr) >> 24) != 127) {
			str_fmt(err, errlen, "code \"%s\" is not an address in "
			    "127.0.0.0/8", addr);
			return -1;
		}
		c->weight = strtod(eq + 1, &end);
		if (end == eq + 1 || *end != '\0' || c->weight > 1e6 ||
		    c->weight < -1e6) {
			str_fmt(err, errlen, "bad weight \"%s\"", eq + 1);
			return -1;
		}
		z->ncodes++;
	}
	if (z->ncodes == 0) {
		str_fmt(err, errlen, "at least one CODE=WEIGHT is needed");
		return -1;
	}
	return 0;
}

int
dnsbl_parse(struct dnsbl_set **setp, char **tok, int n, int fileno,
    char *err, size_t errlen)
{
	int kind = -1;
	struct dnsbl_set *s;

	for (int i = 0; i < 3; i++)
		if (strcmp(tok[0], kind_words[i]) == 0)
			kind = i;
	if (kind < 0 || n < 4) {
		str_fmt(err, errlen, "usage: %s NAME ZONE [weights] CODE=WEIGHT...",
		    tok[0]);
		return -1;
	}
	for (const char *q = tok[1]; *q; q++)
		if (!isupper((unsigned char)*q) && !isdigit((unsigned char)*q) &&
		    *q != '_') {
			str_fmt(err, errlen, "bad name \"%s\" (A-Z, 0-9, _)", tok[1]);
			return -1;
		}
	if (strlen(tok[1]) > 60 || !dns_valid_name(tok[2]) ||
	    strchr(tok[2], '.') == NULL) {
		str_fmt(err, errlen, "bad name \"%s\" or zone \"%s\"", tok[1], tok[2]);
		return -1;
	}
	struct dnsbl_zone *z = xcalloc(1, sizeof(*z));
	z->kind = (enum dnsbl_kind)kind;
	z->file = fileno;
	str_fmt(z->symbol, sizeof(z->symbol), "%s%s", kind_prefix[kind], tok[1]);
	z->zone = str_lower(xstrdup(tok[2]));
	int first = strcmp(tok[3], "weights") == 0 ? 4 : 3;
	if (dnsbl_parse_codes(z, tok + first, n - first, err, errlen) != 0) {
		free(z->zone);
		free(z);
		return -1;
	}
	if (*setp == NULL)
		*setp = xcalloc(1, sizeof(**setp));
	s = *setp;
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->z[i]->symbol, z->symbol) != 0)
			continue;
		if (s->z[i]->file == fileno) {
			str_fmt(err, errlen, "%s %s already defined", tok[0], tok[1]);
			free(z->zone);
			free(z);
			return -1;
		}
		free(s->z[i]->zone);
		free(s->z[i]);
		s->z[i] = z;
		return 0;
	}
	if (s->n == DNSBL_MAX_ZONES) {
		str_fmt(err, errlen, "more than %d zones", DNSBL_MAX_ZONES);
		free(z->zone);
		free(z);
		return -1;
	}
	s->z[s->n++] = z;
	return 0;
}

void
dnsbl_set_free(struct dnsbl_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->z[i]->zone);
		free(s->z[i]);
	}
	free(s);
}

int
dnsbl_ip_name(const char *ip, const char *zone, char *out, size_t outlen)
{
	unsigned char a[16];
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };

	if (inet_pton(AF_INET, ip, a) == 1)
		return str_fmt(out, outlen, "%u.%u.%u.%u.%s", a[3], a[2], a[1],
		    a[0], zone);
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	if (memcmp(a, mapped, 12) == 0)
		return str_fmt(out, outlen, "%u.%u.%u.%u.%s", a[15], a[14], a[13],
		    a[12], zone);
	static const char hex[] = "0123456789abcdef";
	char nib[65];
	for (int i = 0; i < 16; i++) {
		nib[4 * i] = hex[a[15 - i] & 0xf];
		nib[4 * i + 1] = '.';
		nib[4 * i + 2] = hex[a[15 - i] >> 4];
		nib[4 * i + 3] = '.';
	}
	nib[64] = '\0';
	return str_fmt(out, outlen, "%s%s", nib, zone);
}

/* dnsbl_query - look name up in zone z and add its symbol. */
static void
dnsbl_query(struct dnsbl_zone *z, struct dns *d, struct txn *t,
    const char *name, const char *what)
{
	struct dns_result res;
	long now = (long)time(NULL);

	if (atomic_load(&z->unhealthy_until) > now)
		return;
	enum dns_status st = dns_query(d, name, DNS_T_A, &res);
	if (st != DNS_OK) {
		if (st != DNS_NXDOMAIN && st != DNS_NODATA)
			log_warn("%s: %s %s: %s: not counted", t->id, z->symbol, name,
			    dns_status_name(st));
		dns_result_free(&res);
		return;
	}
	double sum = 0;
	struct buf codes;
	buf_init(&codes, 1024);
	for (size_t i = 0; i < res.count; i++) {
		struct in_addr got;
		size_t k;
		if (res.rr[i].type != DNS_T_A ||
		    inet_pton(AF_INET, res.rr[i].text, &got) != 1)
			continue;
		for (k = 0; k < z->ncodes; k++)
			if (z->codes[k].addr.s_addr == got.s_addr)
				break;
		if (k == z->ncodes) {
			char detail[256];
			log_warn("%s: %s: answer %s for %s is not a configured code: "
			    "zone marked unhealthy for %d s, answer ignored", t->id,
			    z->zone, res.rr[i].text, name, DNSBL_UNHEALTHY_SECS);
			atomic_store(&z->unhealthy_until, now + DNSBL_UNHEALTHY_SECS);
			str_fmt(detail, sizeof(detail), "%s answered %s", z->zone,
			    res.rr[i].text);
			txn_symbol(t, "DNSBL_UNHEALTHY", detail);
			buf_free(&codes);
			dns_result_free(&res);
			return;
		}
		sum += z->codes[k].weight;
		buf_printf(&codes, "%s%s", codes.len ? "," : "", res.rr[i].text);
	}
	if (codes.len > 0) {
		char detail[512];
		str_fmt(detail, sizeof(detail), "%s%s%s=%s", what ? what : "",
		    what ? " " : "", name, codes.data);
		txn_symbol(t, z->symbol, detail);
		/* The weight is the symbol's score unless a score line
		 * sets one (see eng_score). */
		for (size_t i = t->nsym; i-- > 0;)
			if (strcmp(t->sym[i].name, z->symbol) == 0) {
				t->sym[i].score = sum;
				break;
			}
	}
	buf_free(&codes);
	dns_result_free(&res);
}

void
dnsbl_run_ip(const struct dnsbl_set *s, struct dns *d, struct txn *t,
    const char *ip)
{
	char name[512];

	if (s == NULL || ip == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct dnsbl_zone *z = s->z[i];
		if (z->kind == DK_RHSBL || txn_has_symbol(t, z->symbol))
			continue;
		if (dnsbl_ip_name(ip, z->zone, name, sizeof(name)) == 0)
			dnsbl_query(z, d, t, name, NULL);
	}
}

void
dnsbl_run_domain(const struct dnsbl_set *s, struct dns *d, struct txn *t,
    const char *domain, const char *what)
{
	char name[512];

	if (s == NULL || domain == NULL || domain[0] == '\0' || domain[0] == '[')
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct dnsbl_zone *z = s->z[i];
		if (z->kind != DK_RHSBL || txn_has_symbol(t, z->symbol))
			continue;
		if (str_fmt(name, sizeof(name), "%s.%s", domain, z->zone) == 0 &&
		    dns_valid_name(name))
			dnsbl_query(z, d, t, name, what);
	}
}

size_t
dnsbl_count(const struct dnsbl_set *s)
{
	return s ? s->n : 0;
}

const char *
dnsbl_symbol(const struct dnsbl_set *s, size_t i)
{
	return s && i < s->n ? s->z[i]->symbol : NULL;
}
