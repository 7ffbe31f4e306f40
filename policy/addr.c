/*
 * addr.c - envelope address parsing (RFC 5321 §4.1.2 Mailbox).
 *
 * Accepts "<local@domain>", "local@domain", "<>", a source route
 * "<@a,@b:local@domain>" (dropped, RFC 5321 §C), quoted local parts
 * ("a b"@x) and address literals (user@[192.0.2.1]). The domain is
 * lower-cased and a trailing dot removed. Pure and thread-safe.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "addr.h"
#include "util.h"

const char *
addr_status_name(enum addr_status s)
{
	switch (s) {
	case ADDR_OK:		return "ok";
	case ADDR_NULL:		return "null";
	case ADDR_BAD_SYNTAX:	return "bad syntax";
	case ADDR_NO_DOMAIN:	return "no domain";
	case ADDR_BAD_DOMAIN:	return "bad domain";
	case ADDR_TOO_LONG:	return "too long";
	}
	return "?";
}

int
addr_domain_ok(const char *d)
{
	size_t len = strlen(d), lab = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (lab == 0 || d[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
		if (c == '-' && lab == 0)
			return 0;
		if (++lab > 63)
			return 0;
	}
	return lab > 0 && d[len - 1] != '-';
}

/* addr_literal_ok - "[192.0.2.1]" or "[IPv6:2001:db8::1]" with a valid
 * address (RFC 5321 §4.1.3); general literals ("[tag:...]") are not
 * accepted. d is lower-case. */
static int
addr_literal_ok(const char *d)
{
	size_t len = strlen(d);
	char ip[64];
	unsigned char bin[16];

	if (len < 3 || len - 2 >= sizeof(ip) || d[0] != '[' || d[len - 1] != ']')
		return 0;
	memcpy(ip, d + 1, len - 2);
	ip[len - 2] = '\0';
	if (strncmp(ip, "ipv6:", 5) == 0)
		return inet_pton(AF_INET6, ip + 5, bin) == 1;
	return inet_pton(AF_INET, ip, bin) == 1;
}

/* addr_scan_local - length of the local part at s (dot-string or
 * quoted-string), or -1 on bad syntax. */
static int
addr_scan_local(const char *s)
{
	size_t i = 0;

	if (s[0] == '"') {
		for (i = 1; s[i] != '"'; i++) {
			if (s[i] == '\0' || iscntrl((unsigned char)s[i]))
				return -1;
			if (s[i] == '\\') {
				i++;
				if (s[i] == '\0' || iscntrl((unsigned char)s[i]))
					return -1;
			}
		}
		return (int)i + 1;
	}
	for (; s[i] && s[i] != '@'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (iscntrl(c) || c == ' ' || c == '<' || c == '>' ||
		    c == '(' || c == ')' || c == ',' || c == ';' ||
		    c == ':' || c == '\\' || c == '"' || c == '[' || c == ']')
			return -1;
		if (i > 300)
			return -1;
	}
	return (int)i;
}

enum addr_status
addr_parse(const char *in, struct addr *a)
{
	const char *s = in, *end;
	int n;

	memset(a, 0, sizeof(*a));
	while (*s == ' ')
		s++;
	end = s + strlen(s);
	while (end > s && end[-1] == ' ')
		end--;
	if (*s == '<') {
		if (end == s || end[-1] != '>')
			return ADDR_BAD_SYNTAX;
		s++;
		end--;
	} else if (end > s && end[-1] == '>') {
		return ADDR_BAD_SYNTAX;
	}
	if (end == s)
		return ADDR_NULL;
	if (end - s > 512)
		return ADDR_TOO_LONG;

	char tmp[520];
	memcpy(tmp, s, (size_t)(end - s));
	tmp[end - s] = '\0';
	s = tmp;
	if (*s == '@') {
		/* Source route: "@a,@b:" - obsolete; keep only the mailbox. */
		const char *colon = strchr(s, ':');
		if (colon == NULL)
			return ADDR_BAD_SYNTAX;
		s = colon + 1;
		a->had_route = 1;
	}
	n = addr_scan_local(s);
	if (n < 0)
		return ADDR_BAD_SYNTAX;
	if (n == 0)
		return ADDR_BAD_SYNTAX;
	if (s[n] == '\0')
		return ADDR_NO_DOMAIN;
	if (s[n] != '@')
		return ADDR_BAD_SYNTAX;
	if (n > 64)
		return ADDR_TOO_LONG;
	memcpy(a->local, s, (size_t)n);
	a->local[n] = '\0';

	const char *dom = s + n + 1;
	size_t dl = strlen(dom);
	if (dl > 0 && dom[dl - 1] == '.' && dom[0] != '[')
		dl--;
	if (dl == 0)
		return ADDR_BAD_DOMAIN;
	if (dl > 255)
		return ADDR_TOO_LONG;
	memcpy(a->domain, dom, dl);
	a->domain[dl] = '\0';
	str_lower(a->domain);
	if (a->domain[0] == '[') {
		if (!addr_literal_ok(a->domain))
			return ADDR_BAD_DOMAIN;
		a->literal = 1;
	} else if (!addr_domain_ok(a->domain)) {
		return ADDR_BAD_DOMAIN;
	}
	return ADDR_OK;
}

int
addr_is_routed(const struct addr *a)
{
	return a->had_route || strpbrk(a->local, "%!@") != NULL;
}
