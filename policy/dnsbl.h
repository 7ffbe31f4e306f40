/*
 * dnsbl.h - DNS block and allow lists (RFC 5782): the client IP against
 * dnsbl and dnswl zones, the sender and From domains against rhsbl
 * zones.
 *
 * Rule-file lines (parsed by policy/rules.c through dnsbl_parse):
 *
 *   dnsbl NAME ZONE [weights] 127.0.0.2=5 127.0.0.4=2 ...
 *   dnswl NAME ZONE [weights] 127.0.10.2=-3 ...
 *   rhsbl NAME ZONE [weights] 127.0.0.2=4 ...
 *
 * A listing adds the symbol DNSBL_<NAME>, DNSWL_<NAME> or RHSBL_<NAME>
 * with the sum of the weights of the codes returned as its score (a
 * "score" line for that symbol overrides it). Only the configured codes
 * count: an answer with any other address (for example 127.255.255.254,
 * which some lists return to blocked or open resolvers) is an error,
 * never a listing: it is logged, the symbol DNSBL_UNHEALTHY is added
 * (detail: the zone and code; score 0 unless configured), and the zone
 * is skipped for DNSBL_UNHEALTHY_SECS. NXDOMAIN is "not listed"; a
 * timeout or SERVFAIL is logged and counts as not listed.
 *
 * Thread safety: a parsed set is immutable except for each zone's
 * "unhealthy until" time, an atomic shared by all threads.
 */
#ifndef MXW_DNSBL_H
#define MXW_DNSBL_H

#include <stddef.h>

#define DNSBL_MAX_ZONES		64
#define DNSBL_MAX_CODES		32
#define DNSBL_UNHEALTHY_SECS	60

struct dnsbl_set;
struct dns;
struct txn;

/*
 * dnsbl_parse - add the zone of one "dnsbl|dnswl|rhsbl" line (tok[0..n))
 * to *set (created when NULL). fileno is the index of the rules file:
 * a zone of the same symbol from an earlier file is replaced, one from
 * the same file is an error. 0, or -1 and a reason in err.
 */
int		 dnsbl_parse(struct dnsbl_set **set, char **tok, int n,
		    int fileno, char *err, size_t errlen);
void		 dnsbl_set_free(struct dnsbl_set *s);

/* dnsbl_run_ip - query the dnsbl and dnswl zones for ip. */
void		 dnsbl_run_ip(const struct dnsbl_set *s, struct dns *d,
		    struct txn *t, const char *ip);
/* dnsbl_run_domain - query the rhsbl zones for domain; what ("sender",
 * "from") goes into the symbol's detail. */
void		 dnsbl_run_domain(const struct dnsbl_set *s, struct dns *d,
		    struct txn *t, const char *domain, const char *what);

/*
 * dnsbl_ip_name - the query name of ip under zone: reversed octets for
 * IPv4 (and IPv4-mapped IPv6), 32 reversed nibbles for IPv6. 0, or -1
 * when ip is not an address or the name does not fit.
 */
int		 dnsbl_ip_name(const char *ip, const char *zone, char *out,
		    size_t outlen);

/* The symbols of the set (for lint). */
size_t		 dnsbl_count(const struct dnsbl_set *s);
const char	*dnsbl_symbol(const struct dnsbl_set *s, size_t i);

#endif
