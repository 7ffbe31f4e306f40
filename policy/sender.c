/*
 * sender.c - does the MAIL FROM domain exist and accept mail?
 * (RFC 5321 §5 implicit MX, RFC 7505 null MX).
 *
 * Called by the engine at MAIL FROM (chk_sender_run). The decision:
 *   malformed domain               SENDER_INVALID (no query)
 *   MX: NXDOMAIN                   SENDER_NXDOMAIN
 *   MX: exactly one, exchange "."  SENDER_NULL_MX
 *   MX: records                    ok
 *   MX: NODATA -> A, then AAAA     ok when either has records, else
 *                                  SENDER_NO_MX (SENDER_NXDOMAIN if the
 *                                  name vanished in between)
 *   any SERVFAIL / timeout         SENDER_TEMPERROR
 * MX records whose exchanges do not resolve are not examined (yet).
 *
 * Owns nothing; adds symbols to the txn.
 * Thread safety: reentrant (no static state).
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "dns.h"
#include "helo.h"
#include "sender.h"
#include "txn.h"
#include "util.h"

const char *
chk_sender_symbol(enum chk_sender_res r)
{
	switch (r) {
	case CHK_SENDER_OK:		return NULL;
	case CHK_SENDER_INVALID:	return "SENDER_INVALID";
	case CHK_SENDER_NXDOMAIN:	return "SENDER_NXDOMAIN";
	case CHK_SENDER_NULL_MX:	return "SENDER_NULL_MX";
	case CHK_SENDER_NO_MX:		return "SENDER_NO_MX";
	case CHK_SENDER_TEMPERROR:	return "SENDER_TEMPERROR";
	}
	return NULL;
}

static void
why_set(char *why, size_t whylen, const char *what, const char *type,
    enum dns_status st)
{
	if (why == NULL || whylen == 0)
		return;
	if (type == NULL)
		(void)str_copy(why, what, whylen);
	else
		(void)str_fmt(why, whylen, "%s %s %s", what, type,
		    dns_status_name(st));
}

/* sender_is_temp - a status that says "ask again later". */
static int
sender_is_temp(enum dns_status st)
{
	return st == DNS_SERVFAIL || st == DNS_TIMEOUT || st == DNS_MALFORMED;
}

/* sender_addr_fallback - implicit MX: A, then AAAA. */
static enum chk_sender_res
sender_addr_fallback(struct dns *d, const char *domain, char *why,
    size_t whylen)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
	static const char *const names[] = { "A", "AAAA" };

	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		struct dns_result res;
		enum dns_status st = dns_query(d, domain, types[i], &res);

		dns_result_free(&res);
		if (st == DNS_OK) {
			why_set(why, whylen, "implicit MX", names[i], st);
			return CHK_SENDER_OK;
		}
		if (sender_is_temp(st)) {
			why_set(why, whylen, domain, names[i], st);
			return CHK_SENDER_TEMPERROR;
		}
		if (st == DNS_NXDOMAIN) {
			why_set(why, whylen, domain, names[i], st);
			return CHK_SENDER_NXDOMAIN;
		}
	}
	why_set(why, whylen, "no MX, A or AAAA", NULL, DNS_OK);
	return CHK_SENDER_NO_MX;
}

enum chk_sender_res
chk_sender_eval(struct dns *d, const char *domain, char *why, size_t whylen)
{
	struct dns_result res;
	enum dns_status st;
	enum chk_sender_res r;
	const char *dot;

	dot = domain != NULL ? strchr(domain, '.') : NULL;
	if (domain == NULL || domain[0] == '[' ||
	    !chk_helo_hostname_ok(domain) || dot == NULL || dot[1] == '\0') {
		why_set(why, whylen, "malformed domain", NULL, DNS_OK);
		return CHK_SENDER_INVALID;
	}
	st = dns_query(d, domain, DNS_T_MX, &res);
	switch (st) {
	case DNS_OK:
		if (res.count == 1 && res.rr[0].text != NULL &&
		    res.rr[0].text[0] == '\0') {
			why_set(why, whylen, "null MX", NULL, st);
			r = CHK_SENDER_NULL_MX;
		} else {
			why_set(why, whylen, "MX", NULL, st);
			r = CHK_SENDER_OK;
		}
		break;
	case DNS_NODATA:
		r = sender_addr_fallback(d, domain, why, whylen);
		break;
	case DNS_NXDOMAIN:
		why_set(why, whylen, domain, "MX", st);
		r = CHK_SENDER_NXDOMAIN;
		break;
	case DNS_BADNAME:
		why_set(why, whylen, "malformed domain", NULL, st);
		r = CHK_SENDER_INVALID;
		break;
	default:
		why_set(why, whylen, domain, "MX", st);
		r = CHK_SENDER_TEMPERROR;
		break;
	}
	dns_result_free(&res);
	return r;
}

/*
 * sender_literal - the domain part of t->mail_from when it is an address
 * literal ("a@[192.0.2.1]"), copied to a (NULL otherwise). txn_set_mail()
 * leaves t->mail_domain NULL for a literal as for the null sender, so
 * the literal must be told apart here; a malformed MAIL FROM (already
 * MAIL_MALFORMED) is not parsed as one.
 */
static const char *
sender_literal(const struct txn *t, struct addr *a)
{
	if (t->mail_from == NULL || t->mail_from[0] == '\0' ||
	    addr_parse(t->mail_from, a) != ADDR_OK || !a->literal)
		return NULL;
	return a->domain;
}

void
chk_sender_run(struct txn *t, struct dns *d)
{
	char why[300];
	enum chk_sender_res r;
	const char *sym, *domain = t->mail_domain;
	struct addr a;

	if (domain == NULL && (domain = sender_literal(t, &a)) == NULL)
		return;		/* null sender */
	r = chk_sender_eval(d, domain, why, sizeof(why));
	sym = chk_sender_symbol(r);
	if (sym != NULL)
		txn_symbol(t, sym, why);
}
