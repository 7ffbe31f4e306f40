/*
 * proxy_pp.c - the PROXY protocol (HAProxy's "proxy-protocol.txt",
 * versions 1 and 2) and CIDR lists for the SMTP proxy.
 *
 * Called by proxy.c (is a peer a trusted upstream?) and proxy_session.c
 * (read the header a trusted upstream sends first; write one to the
 * backend when proxy_backend_forward is proxy-v1 or proxy-v2; bare-LF
 * exemptions). Pure functions: no allocation, no I/O, thread-safe.
 *
 * Security: a v1 header is at most 107 octets and must end with CRLF;
 * its addresses and ports are parsed strictly (inet_pton, 0..65535). A
 * v2 header is bounded by PROXY_PP_MAX; its TLVs are skipped unread.
 * Only TCP over IPv4/IPv6 and LOCAL/UNKNOWN are accepted.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_pp.h"
#include "util.h"

static const unsigned char pp_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* pp_port - a decimal port 0..65535 without sign or leading junk. */
static int
pp_port(const char *s, int *port)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)*s) || strlen(s) > 5)
		return -1;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* pp_parse_v1 - "PROXY TCP4|TCP6|UNKNOWN ..." ended by CRLF. */
static int
pp_parse_v1(const unsigned char *p, size_t n, size_t *used,
    struct proxy_pp_addr *a, char *err, size_t errlen)
{
	char line[108], *f[7], *save = NULL;
	const unsigned char *crlf = NULL;
	size_t nf = 0;
	int fam;
	unsigned char tmp[16];

	for (size_t i = 0; i + 1 < n && i < 107; i++)
		if (p[i] == '\r' && p[i + 1] == '\n') {
			crlf = p + i;
			break;
		}
	if (crlf == NULL) {
		if (n < 107 && memchr(p, '\n', n) == NULL)
			return 0;
		str_fmt(err, errlen, "PROXY v1 header without CRLF in 107 octets");
		return -1;
	}
	memcpy(line, p, (size_t)(crlf - p));
	line[crlf - p] = '\0';
	*used = (size_t)(crlf - p) + 2;
	for (char *t = strtok_r(line, " ", &save); t != NULL && nf < 7;
	    t = strtok_r(NULL, " ", &save))
		f[nf++] = t;	/* a 7th field means too many */
	if (nf >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
		a->local = 1;
		return 1;
	}
	if (nf != 6 || (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0)) {
		str_fmt(err, errlen, "malformed PROXY v1 header");
		return -1;
	}
	fam = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (inet_pton(fam, f[2], tmp) != 1 || inet_pton(fam, f[3], tmp) != 1 ||
	    pp_port(f[4], &a->sport) != 0 || pp_port(f[5], &a->dport) != 0) {
		str_fmt(err, errlen, "bad address or port in PROXY v1 header");
		return -1;
	}
	str_copy(a->src, f[2], sizeof(a->src));
	str_copy(a->dst, f[3], sizeof(a->dst));
	return 1;
}

/* pp_parse_v2 - the binary header after its signature. */
static int
pp_parse_v2(const unsigned char *p, size_t n, size_t *used,
    struct proxy_pp_addr *a, char *err, size_t errlen)
{
	size_t len;

	if (n < 16)
		return 0;
	len = (size_t)p[14] << 8 | p[15];
	if (16 + len > PROXY_PP_MAX) {
		str_fmt(err, errlen, "PROXY v2 header too long (%zu)", len);
		return -1;
	}
	if ((p[12] & 0xf0) != 0x20 || (p[12] & 0x0f) > 1) {
		str_fmt(err, errlen, "PROXY v2: bad version or command 0x%02x",
		    p[12]);
		return -1;
	}
	if (n < 16 + len)
		return 0;
	*used = 16 + len;
	if ((p[12] & 0x0f) == 0 || p[13] == 0x00) {
		a->local = 1;	/* LOCAL (health check) or UNSPEC */
		return 1;
	}
	if (p[13] == 0x11 && len >= 12) {
		inet_ntop(AF_INET, p + 16, a->src, sizeof(a->src));
		inet_ntop(AF_INET, p + 20, a->dst, sizeof(a->dst));
		a->sport = p[24] << 8 | p[25];
		a->dport = p[26] << 8 | p[27];
		return 1;
	}
	if (p[13] == 0x21 && len >= 36) {
		inet_ntop(AF_INET6, p + 16, a->src, sizeof(a->src));
		inet_ntop(AF_INET6, p + 32, a->dst, sizeof(a->dst));
		a->sport = p[48] << 8 | p[49];
		a->dport = p[50] << 8 | p[51];
		return 1;
	}
	str_fmt(err, errlen, "PROXY v2: unsupported family 0x%02x or short"
	    " address block", p[13]);
	return -1;
}

int
proxy_pp_parse(const unsigned char *p, size_t n, size_t *used,
    struct proxy_pp_addr *a, char *err, size_t errlen)
{
	size_t k = n < sizeof(pp_v2_sig) ? n : sizeof(pp_v2_sig);

	memset(a, 0, sizeof(*a));
	*used = 0;
	if (memcmp(p, pp_v2_sig, k) == 0)
		return k < sizeof(pp_v2_sig) ? 0 :
		    pp_parse_v2(p, n, used, a, err, errlen);
	k = n < 6 ? n : 6;
	if (memcmp(p, "PROXY ", k) == 0)
		return k < 6 ? 0 : pp_parse_v1(p, n, used, a, err, errlen);
	str_fmt(err, errlen, "no PROXY protocol header");
	return -1;
}

/* pp_addr - family and bytes of a presentation address (mapped -> v4). */
static int
pp_addr(const char *s, unsigned char out[16])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };

	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, out) != 1)
		return -1;
	if (memcmp(out, mapped, 12) == 0) {
		memmove(out, out + 12, 4);
		return AF_INET;
	}
	return AF_INET6;
}

int
proxy_pp_build(int version, const char *src, int sport, const char *dst,
    int dport, unsigned char *out, size_t cap, size_t *len)
{
	unsigned char s[16], d[16];
	int fam = pp_addr(src, s);

	if (fam < 0 || pp_addr(dst, d) != fam || sport < 0 || sport > 65535 ||
	    dport < 0 || dport > 65535)
		return -1;
	if (version == 1) {
		char ss[INET6_ADDRSTRLEN], ds[INET6_ADDRSTRLEN];
		int n;

		inet_ntop(fam, s, ss, sizeof(ss));
		inet_ntop(fam, d, ds, sizeof(ds));
		n = snprintf((char *)out, cap, "PROXY %s %s %s %d %d\r\n",
		    fam == AF_INET ? "TCP4" : "TCP6", ss, ds, sport, dport);
		if (n < 0 || (size_t)n >= cap)
			return -1;
		*len = (size_t)n;
		return 0;
	}
	size_t alen = fam == AF_INET ? 4 : 16, total = 16 + 2 * alen + 4;

	if (cap < total)
		return -1;
	memcpy(out, pp_v2_sig, sizeof(pp_v2_sig));
	out[12] = 0x21;				/* version 2, PROXY */
	out[13] = fam == AF_INET ? 0x11 : 0x21;	/* TCP over IPv4 / IPv6 */
	out[14] = 0;
	out[15] = (unsigned char)(2 * alen + 4);
	memcpy(out + 16, s, alen);
	memcpy(out + 16 + alen, d, alen);
	out[16 + 2 * alen] = (unsigned char)(sport >> 8);
	out[17 + 2 * alen] = (unsigned char)sport;
	out[18 + 2 * alen] = (unsigned char)(dport >> 8);
	out[19 + 2 * alen] = (unsigned char)dport;
	*len = total;
	return 0;
}

void
proxy_sockaddr_ip(const struct sockaddr *sa, char *ip, size_t iplen, int *port)
{
	*port = 0;
	str_copy(ip, "0.0.0.0", iplen);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		*port = ntohs(s4->sin_port);
		inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)iplen);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		*port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip,
			    (socklen_t)iplen);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)iplen);
	}
}

/* pp_net_match - ip in "net[/len]": 1, 0, or -1 when net is malformed. */
static int
pp_net_match(const char *ip, const char *net)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(net, '/');
	size_t hl = slash ? (size_t)(slash - net) : strlen(net);
	unsigned char n[16], a[16];
	int fam, plen;

	if (hl >= sizeof(host))
		return -1;
	memcpy(host, net, hl);
	host[hl] = '\0';
	if ((fam = pp_addr(host, n)) < 0)
		return -1;
	plen = fam == AF_INET ? 32 : 128;
	if (slash != NULL) {
		int v;

		if (pp_port(slash + 1, &v) != 0 || v > plen)
			return -1;
		plen = v;
	}
	if (pp_addr(ip, a) != fam)
		return 0;
	if (memcmp(a, n, (size_t)plen / 8) != 0)
		return 0;
	if (plen % 8 != 0) {
		unsigned char mask = (unsigned char)(0xff << (8 - plen % 8));

		if ((a[plen / 8] & mask) != (n[plen / 8] & mask))
			return 0;
	}
	return 1;
}

int
proxy_ip_in_list(const char *ip, const char *list)
{
	char tmp[4096], *save = NULL;

	if (str_copy(tmp, list, sizeof(tmp)) != 0)
		return 0;
	for (char *t = strtok_r(tmp, " ,\t", &save); t != NULL;
	    t = strtok_r(NULL, " ,\t", &save))
		if (pp_net_match(ip, t) == 1)
			return 1;
	return 0;
}

int
proxy_ip_list_check(const char *list, char *err, size_t errlen)
{
	char tmp[4096], *save = NULL;

	if (str_copy(tmp, list, sizeof(tmp)) != 0) {
		str_fmt(err, errlen, "network list longer than %zu", sizeof(tmp));
		return -1;
	}
	for (char *t = strtok_r(tmp, " ,\t", &save); t != NULL;
	    t = strtok_r(NULL, " ,\t", &save))
		if (pp_net_match("127.0.0.1", t) < 0) {
			str_fmt(err, errlen, "bad network \"%s\"", t);
			return -1;
		}
	return 0;
}
