/*
 * proxy_pp.h - client addresses for the SMTP proxy: the HAProxy PROXY
 * protocol (version 1, text, and version 2, binary) in both directions,
 * and the CIDR lists of the proxy's settings (proxy_trusted_upstreams,
 * proxy_bare_lf_exempt).
 *
 * Pure functions over bytes and strings: no I/O. Thread-safe.
 */
#ifndef MXW_PROXY_PP_H
#define MXW_PROXY_PP_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_PP_MAX	(16 + 1024)	/* longest v2 header accepted */

struct proxy_pp_addr {
	int	 local;		/* LOCAL / UNKNOWN: no client address given */
	char	 src[INET6_ADDRSTRLEN];
	int	 sport;
	char	 dst[INET6_ADDRSTRLEN];
	int	 dport;
};

/*
 * proxy_pp_parse - a PROXY header (v1 or v2) at the start of p[0..n).
 * Returns 1 with *used its length and *a filled, 0 when more bytes are
 * needed to decide, -1 with a reason in err when it is no valid header.
 */
int	proxy_pp_parse(const unsigned char *p, size_t n, size_t *used,
	    struct proxy_pp_addr *a, char *err, size_t errlen);

/*
 * proxy_pp_build - the header telling a backend that src:sport connected
 * to dst:dport (both of one family; an IPv4-mapped IPv6 address counts
 * as IPv4). version 1 or 2. Returns 0 with *len bytes in out, or -1
 * (bad address, mixed families, no room).
 */
int	proxy_pp_build(int version, const char *src, int sport, const char *dst,
	    int dport, unsigned char *out, size_t cap, size_t *len);

/* proxy_sockaddr_ip - presentation address (IPv4-mapped shown as IPv4)
 * and port of sa. */
void	proxy_sockaddr_ip(const struct sockaddr *sa, char *ip, size_t iplen,
	    int *port);

/* proxy_ip_in_list - 1 when ip is in one of list's networks ("a/len" or
 * a single address, separated by spaces or commas), 0 when not. */
int	proxy_ip_in_list(const char *ip, const char *list);

/* proxy_ip_list_check - 0, or -1 with the first bad entry in err. */
int	proxy_ip_list_check(const char *list, char *err, size_t errlen);

#endif
