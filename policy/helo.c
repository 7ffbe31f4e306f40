/*
 * helo.c - checks of the HELO/EHLO argument (RFC 5321 §4.1.1.1, §4.1.3,
 * §2.3.5).
 *
 * Called by the engine at HELO (chk_helo_run). The syntax part is the
 * pure function chk_helo_classify(), unit-tested on its own; the rest
 * compares the argument with the client address and our own host name
 * and, for a FQDN, asks the resolver whether the name exists at all.
 *
 * Owns nothing; adds symbols to the txn.
 * Thread safety: reentrant (no static state).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "helo.h"
#include "iprev.h"
#include "txn.h"
#include "util.h"

/* label_char_ok - letter, digit, hyphen, or an octet of a UTF-8 label. */
static int
label_char_ok(unsigned char c)
{
	return isalnum(c) || c == '-' || c >= 0x80;
}

int
chk_helo_hostname_ok(const char *name)
{
	size_t len, start = 0;
	int digits_only = 1;

	if (name == NULL)
		return 0;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '.';

		if (c == '.') {
			size_t l = i - start;

			if (l == 0 || l > 63 || name[start] == '-' ||
			    name[i - 1] == '-')
				return 0;
			if (i < len)
				digits_only = 1;	/* a new label starts */
			start = i + 1;
			continue;
		}
		if (!label_char_ok(c))
			return 0;
		if (!isdigit(c))
			digits_only = 0;
	}
	return !digits_only;	/* the top label is not all digits */
}

/* helo_literal - parse "[a.b.c.d]" or "[IPv6:...]"; 0 and the address in
 * ip, or -1. */
static int
helo_literal(const char *helo, char *ip, size_t iplen)
{
	char inner[64];
	unsigned char a[16];
	size_t len = strlen(helo);
	const char *addr;

	if (len < 3 || helo[len - 1] != ']' || len - 2 >= sizeof(inner))
		return -1;
	memcpy(inner, helo + 1, len - 2);
	inner[len - 2] = '\0';
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		addr = inner + 5;
		if (inet_pton(AF_INET6, addr, a) != 1)
			return -1;
	} else {
		addr = inner;
		if (inet_pton(AF_INET, addr, a) != 1)
			return -1;
	}
	if (ip != NULL && str_copy(ip, addr, iplen) != 0)
		return -1;
	return 0;
}

enum chk_helo_kind
chk_helo_classify(const char *helo, char *ip, size_t iplen)
{
	unsigned char a[16];
	const char *why;

	if (ip != NULL && iplen > 0)
		ip[0] = '\0';
	if (helo == NULL || *helo == '\0') {
		why = "empty";
		goto invalid;
	}
	for (const char *p = helo; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f) {
			why = "space or control character";
			goto invalid;
		}
	}
	if (helo[0] == '[') {
		if (helo_literal(helo, ip, iplen) == 0)
			return CHK_HELO_LITERAL;
		why = "bad address literal";
		goto invalid;
	}
	if (inet_pton(AF_INET, helo, a) == 1 ||
	    (strchr(helo, ':') != NULL && inet_pton(AF_INET6, helo, a) == 1)) {
		if (ip != NULL)
			(void)str_copy(ip, helo, iplen);
		return CHK_HELO_BARE_IP;
	}
	if (!chk_helo_hostname_ok(helo)) {
		why = "bad host name syntax";
		goto invalid;
	}
	{
		const char *dot = strchr(helo, '.');

		return dot != NULL && dot[1] != '\0' ? CHK_HELO_FQDN :
		    CHK_HELO_NOT_FQDN;
	}
invalid:
	if (ip != NULL)
		(void)str_copy(ip, why, iplen);
	return CHK_HELO_INVALID;
}

/* helo_is_ours - name equals one of our names or lies under it. */
static int
helo_is_ours(const char *name, const char *ours1, const char *ours2)
{
	char n[256];
	size_t len;

	if (str_copy(n, name, sizeof(n)) != 0)
		return 0;
	len = strlen(n);
	if (len > 0 && n[len - 1] == '.')
		n[len - 1] = '\0';
	return (ours1 != NULL && *ours1 != '\0' && str_is_subdomain(n, ours1)) ||
	    (ours2 != NULL && *ours2 != '\0' && str_is_subdomain(n, ours2));
}

/*
 * helo_exists - 1 if name has A, AAAA or MX records, 0 if it has none
 * (NXDOMAIN, or NODATA for all three), -1 on a DNS error.
 */
static int
helo_exists(struct dns *d, const char *name)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX };

	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		struct dns_result res;
		enum dns_status st = dns_query(d, name, types[i], &res);

		dns_result_free(&res);
		if (st == DNS_OK)
			return 1;
		if (st == DNS_NXDOMAIN || st == DNS_BADNAME)
			return 0;
		if (st != DNS_NODATA)
			return -1;
	}
	return 0;
}

/* helo_literal_matches - the literal's address equals the client's
 * (IPv4-mapped forms compare as IPv4). */
static int
helo_literal_matches(const char *lit, const char *client)
{
	unsigned char a[16], b[16];
	int la = chk_iprev_ip_parse(lit, a);
	int lb = chk_iprev_ip_parse(client, b);

	return la != 0 && la == lb && memcmp(a, b, (size_t)la) == 0;
}

void
chk_helo_run(struct txn *t, struct dns *d, const char *our_hostname)
{
	char ip[64], detail[128];
	enum chk_helo_kind k = chk_helo_classify(t->helo, ip, sizeof(ip));

	switch (k) {
	case CHK_HELO_INVALID:
		txn_symbol(t, "HELO_INVALID", ip);
		return;
	case CHK_HELO_BARE_IP:
		txn_symbol(t, "HELO_BARE_IP", ip);
		return;
	case CHK_HELO_LITERAL:
		if (!helo_literal_matches(ip, t->client_ip)) {
			(void)str_fmt(detail, sizeof(detail), "%s is not %s", ip,
			    t->client_ip != NULL ? t->client_ip : "?");
			txn_symbol(t, "HELO_LITERAL_MISMATCH", detail);
		}
		return;
	case CHK_HELO_NOT_FQDN:
	case CHK_HELO_FQDN:
		break;
	}
	if (!t->client_internal &&
	    helo_is_ours(t->helo, our_hostname, t->our_hostname)) {
		txn_symbol(t, "HELO_FORGED_OURS", t->helo);
		return;
	}
	if (k == CHK_HELO_NOT_FQDN) {
		txn_symbol(t, "HELO_NOT_FQDN", t->helo);
		return;
	}
	if (helo_exists(d, t->helo) == 0)
		txn_symbol(t, "HELO_NXDOMAIN", t->helo);
}
