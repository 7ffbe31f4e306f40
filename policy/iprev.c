/*
 * iprev.c - forward-confirmed reverse DNS of the client (RFC 8601 §3).
 *
 * Called by the engine at connect (chk_iprev_run). It asks the PTR
 * records of the client address through dns_query(), then the address
 * records of each name (first CHK_IPREV_MAX_NAMES only), and passes when
 * one of them equals the client address.
 *
 * Result mapping (RFC 8601 §3):
 *   a name confirms the address            pass       IPREV_PASS
 *   no PTR (NXDOMAIN / NODATA)             permerror  IPREV_NONE
 *   PTR lookup failed (SERVFAIL, timeout)  temperror  IPREV_TEMPERROR
 *   no name confirms, some forward lookup
 *   failed temporarily                     temperror  IPREV_TEMPERROR
 *   no name confirms                       fail       IPREV_FAIL
 *
 * Owns nothing beyond the call; writes t->iprev and t->iprev_name.
 * Thread safety: reentrant (no static state).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "iprev.h"
#include "log.h"
#include "txn.h"
#include "util.h"

int
chk_iprev_ip_parse(const char *ip, unsigned char out[16])
{
	unsigned char a[16];

	if (ip == NULL)
		return 0;
	if (inet_pton(AF_INET, ip, a) == 1) {
		memcpy(out, a, 4);
		return 4;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
		memcpy(out, a + 12, 4);
		return 4;
	}
	memcpy(out, a, 16);
	return 16;
}

/* iprev_set - record the outcome: result, name (copied, may be NULL) and
 * the symbol with its detail. */
static void
iprev_set(struct txn *t, enum chk_res res, const char *name,
    const char *symbol, const char *detail)
{
	free(t->iprev_name);
	t->iprev_name = name != NULL ? xstrdup(name) : NULL;
	t->iprev = res;
	txn_symbol(t, symbol, detail);
}

/*
 * iprev_confirms - does name have an address record equal to ip (alen
 * octets)? Returns 1 yes, 0 no, -1 temporary DNS error.
 */
static int
iprev_confirms(struct dns *d, const char *name, const unsigned char *ip,
    int alen)
{
	struct dns_result res;
	enum dns_status st;
	int found = 0;

	st = dns_query(d, name, alen == 4 ? DNS_T_A : DNS_T_AAAA, &res);
	for (size_t i = 0; st == DNS_OK && i < res.count && !found; i++) {
		unsigned char a[16];

		if (res.rr[i].type != (alen == 4 ? DNS_T_A : DNS_T_AAAA))
			continue;
		if (chk_iprev_ip_parse(res.rr[i].text, a) == alen &&
		    memcmp(a, ip, (size_t)alen) == 0)
			found = 1;
	}
	dns_result_free(&res);
	if (found)
		return 1;
	return st == DNS_SERVFAIL || st == DNS_TIMEOUT ||
	    st == DNS_MALFORMED ? -1 : 0;
}

void
chk_iprev_run(struct txn *t, struct dns *d)
{
	struct dns_result ptr;
	enum dns_status st;
	unsigned char ip[16];
	char rev[128], detail[160];
	const char *first = NULL;
	int alen, temp = 0;
	size_t n = 0;

	t->iprev = CHK_NONE;
	alen = chk_iprev_ip_parse(t->client_ip, ip);
	if (alen == 0 || dns_reverse_name(t->client_ip, rev, sizeof(rev)) != 0)
		return;		/* "unknown" or a non-IP transport */

	st = dns_query(d, rev, DNS_T_PTR, &ptr);
	if (st == DNS_NXDOMAIN || st == DNS_NODATA || st == DNS_BADNAME) {
		iprev_set(t, CHK_PERMERROR, NULL, "IPREV_NONE",
		    dns_status_name(st));
		goto out;
	}
	if (st != DNS_OK) {
		(void)str_fmt(detail, sizeof(detail), "PTR %s", dns_status_name(st));
		iprev_set(t, CHK_TEMPERROR, NULL, "IPREV_TEMPERROR", detail);
		goto out;
	}
	for (size_t i = 0; i < ptr.count && n < CHK_IPREV_MAX_NAMES; i++) {
		const char *name = ptr.rr[i].text;
		int r;

		if (ptr.rr[i].type != DNS_T_PTR || name == NULL || *name == '\0')
			continue;
		n++;
		if (first == NULL)
			first = name;
		r = iprev_confirms(d, name, ip, alen);
		if (r == 1) {
			iprev_set(t, CHK_PASS, name, "IPREV_PASS", name);
			goto out;
		}
		if (r < 0)
			temp = 1;
	}
	if (temp) {
		(void)str_fmt(detail, sizeof(detail), "forward lookup failed for %s",
		    first);
		iprev_set(t, CHK_TEMPERROR, first, "IPREV_TEMPERROR", detail);
	} else if (first == NULL) {
		iprev_set(t, CHK_PERMERROR, NULL, "IPREV_NONE", "empty PTR");
	} else {
		(void)str_fmt(detail, sizeof(detail), "%s does not resolve to %s",
		    first, t->client_ip);
		iprev_set(t, CHK_FAIL, first, "IPREV_FAIL", detail);
	}
out:
	log_debug("%s iprev %s: %s", t->id, t->client_ip,
	    t->iprev_name != NULL ? t->iprev_name : "-");
	dns_result_free(&ptr);
}
