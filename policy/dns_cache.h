/*
 * dns_cache.h - a small answer cache in front of the libunbound resolver
 * (implemented in dns.c, whose queries use it; declared here for its
 * unit test).
 *
 * libunbound keeps its own cache, but every query of an asynchronous
 * context, even a cached one, is a round trip through its worker thread
 * (two pipe writes and two thread wake-ups). A check asks the same few
 * names for every message of a client (PTR, SPF, DKIM key, DMARC
 * record); this cache answers those without leaving the calling thread.
 *
 * It keeps final answers only (DNS_OK, DNS_NODATA, DNS_NXDOMAIN), each
 * for at most its TTL and at most DNS_CACHE_MAX_TTL seconds, so it never
 * answers for longer than libunbound's cache would. Errors, timeouts and
 * malformed answers are never kept. Bounded: DNS_CACHE_SLOTS entries
 * (direct-mapped: a new answer replaces the one in its slot), answers
 * bigger than DNS_CACHE_MAX_BYTES are not kept.
 *
 * Thread safety: every function may be called from any thread at once
 * on one cache (one mutex, held for a lookup or a copy).
 */
#ifndef MXW_DNS_CACHE_H
#define MXW_DNS_CACHE_H

#include <stdint.h>

#include "dns.h"

#define DNS_CACHE_SLOTS		512
#define DNS_CACHE_MAX_TTL	60	/* seconds */
#define DNS_CACHE_MAX_BYTES	4096	/* rdata + text of one answer */

struct dns_cache;

/* dns_cache_new - an empty cache. Free it with dns_cache_free(). */
struct dns_cache	*dns_cache_new(void);
void			 dns_cache_free(struct dns_cache *c);

/*
 * dns_cache_get - a copy of the answer for name/type (name compared
 * without case) if one is kept and not expired at now_ms (a monotonic
 * clock in milliseconds), each record's TTL less the whole seconds it
 * was kept. 1 with *res filled (the caller frees it with
 * dns_result_free), or 0 with *res untouched.
 */
int	 dns_cache_get(struct dns_cache *c, const char *name, uint16_t type,
	    int64_t now_ms, struct dns_result *res);

/*
 * dns_cache_put - keep a copy of res for name/type until now_ms + ttl
 * seconds (ttl capped at DNS_CACHE_MAX_TTL). Does nothing for a status
 * other than DNS_OK/NODATA/NXDOMAIN, a TTL of 0, a name longer than a
 * DNS name, or an answer over DNS_CACHE_MAX_BYTES.
 */
void	 dns_cache_put(struct dns_cache *c, const char *name, uint16_t type,
	    int64_t now_ms, uint32_t ttl, const struct dns_result *res);

#endif
