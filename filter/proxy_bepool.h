/*
 * proxy_bepool.h - what the sessions share about the backend: idle
 * connections kept for the next client session (proxy_backend_reuse: a
 * session that ended cleanly hands its backend connection back, after
 * an RSET when a transaction was still open; the next session takes it
 * instead of connecting, and skips the connect and the greeting), and
 * whether the backend is taken as down (see proxy_bepool_is_down).
 *
 * Only connections that carry nothing of their last client are kept:
 * the session decides (no AUTH, proxy_backend_forward none, no
 * transaction left open); the pool checks on taking that the backend
 * has not closed or spoken since (an idle timeout's 421).
 */
#ifndef MXW_PROXY_BEPOOL_H
#define MXW_PROXY_BEPOOL_H

#include <stddef.h>

struct proxy_backend;
struct proxy_bepool;

/* A backend whose connect or greeting failed slowly (a timeout: each
 * one keeps a client waiting that long) this many times in a row is
 * taken as down for PROXY_BEPOOL_DOWN_MS: sessions answer 421 at once. */
#define PROXY_BEPOOL_SLOW_FAILS	3
#define PROXY_BEPOOL_SLOW_MS	1000	/* a failure this slow counts */
#define PROXY_BEPOOL_DOWN_MS	10000

/* proxy_bepool_new - a pool of at most max_idle connections (0: none
 * kept), each kept at most idle_ms. */
struct proxy_bepool *proxy_bepool_new(size_t max_idle, int idle_ms);

/* proxy_bepool_free - QUIT and close every kept connection. */
void	proxy_bepool_free(struct proxy_bepool *pool);

/* proxy_bepool_keeps - non-zero when the pool keeps connections at all
 * (proxy_backend_reuse > 0). */
int	proxy_bepool_keeps(const struct proxy_bepool *pool);

/*
 * proxy_bepool_take - a kept connection to the backend named spec
 * ("host:port" as in proxy_backend) into *b, which must be unconnected.
 * Returns 1 (b connected, its EHLO capabilities known), or 0 when none
 * is usable (b untouched). Thread-safe.
 */
int	proxy_bepool_take(struct proxy_bepool *pool, const char *spec,
	    struct proxy_backend *b);

/*
 * proxy_bepool_give - keep the connected, idle backend b (the caller
 * has checked it may be reused); b is left unconnected. When the pool
 * is full, the oldest kept connection is closed. Thread-safe.
 */
void	proxy_bepool_give(struct proxy_bepool *pool, struct proxy_backend *b);

/*
 * proxy_bepool_opened - the outcome of an attempt to open a connection
 * to the backend spec (connect and greeting): ok, and how long it took.
 * proxy_bepool_is_down - the milliseconds the backend spec is still
 * taken as down, 0 when it is not. Thread-safe.
 */
void	proxy_bepool_opened(struct proxy_bepool *pool, const char *spec, int ok,
	    long long took_ms);
long long proxy_bepool_is_down(struct proxy_bepool *pool, const char *spec);

#endif
