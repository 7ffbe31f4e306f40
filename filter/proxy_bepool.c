/*
 * proxy_bepool.c - idle backend connections for reuse (see the header).
 *
 * Called by proxy_session.c (take when a session needs its backend, give
 * when it ends); made and freed by proxy.c. Owns the kept connections:
 * each entry is a whole struct proxy_backend moved in and out by value
 * (its buffers and descriptor go with it). Newest first: a warm
 * connection is taken before an old one, and the oldest are the ones
 * closed when the pool is full or they have waited too long.
 *
 * Down: PROXY_BEPOOL_SLOW_FAILS slow failures in a row (connect or
 * greeting timeouts, which each keep a client waiting for the whole
 * timeout) make sessions refuse at once for PROXY_BEPOOL_DOWN_MS instead of
 * piling up on the dead backend; the first session after that tries
 * again. Fast failures (connection refused) need no such guard. Keyed by
 * the backend's address, so a reload to another backend starts afresh.
 *
 * Thread safety: one mutex over the list and the health; closing (QUIT,
 * a bounded wait) is done outside it.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_backend.h"
#include "proxy_bepool.h"
#include "util.h"

struct proxy_bepool_ent {
	struct proxy_backend	 be;
	long long		 since;		/* util_mono_ms() when given */
};

struct proxy_bepool {
	pthread_mutex_t		 lock;
	struct proxy_bepool_ent	*ent;		/* [0] oldest .. [n-1] newest */
	size_t			 n, max;
	int			 idle_ms;
	char			 health_of[300];	/* backend spec */
	int			 slow_fails;	/* in a row */
	long long		 down_until;	/* util_mono_ms() */
};

struct proxy_bepool *
proxy_bepool_new(size_t max_idle, int idle_ms)
{
	struct proxy_bepool *pool = xcalloc(1, sizeof(*pool));

	pthread_mutex_init(&pool->lock, NULL);
	pool->max = max_idle;
	pool->idle_ms = idle_ms;
	pool->ent = xcalloc(max_idle > 0 ? max_idle : 1, sizeof(*pool->ent));
	return pool;
}

int
proxy_bepool_keeps(const struct proxy_bepool *pool)
{
	return pool->max > 0;
}

void
proxy_bepool_opened(struct proxy_bepool *pool, const char *spec, int ok,
    long long took_ms)
{
	pthread_mutex_lock(&pool->lock);
	if (strcmp(pool->health_of, spec) != 0) {
		str_copy(pool->health_of, spec, sizeof(pool->health_of));
		pool->slow_fails = 0;
		pool->down_until = 0;
	}
	if (ok)
		pool->slow_fails = 0;
	else if (took_ms >= PROXY_BEPOOL_SLOW_MS &&
	    ++pool->slow_fails >= PROXY_BEPOOL_SLOW_FAILS) {
		pool->down_until = util_mono_ms() + PROXY_BEPOOL_DOWN_MS;
		pool->slow_fails = 0;
	}
	pthread_mutex_unlock(&pool->lock);
}

long long
proxy_bepool_is_down(struct proxy_bepool *pool, const char *spec)
{
	long long left = 0;

	pthread_mutex_lock(&pool->lock);
	if (strcmp(pool->health_of, spec) == 0)
		left = pool->down_until - util_mono_ms();
	pthread_mutex_unlock(&pool->lock);
	return left > 0 ? left : 0;
}

void
proxy_bepool_free(struct proxy_bepool *pool)
{
	if (pool == NULL)
		return;
	for (size_t i = 0; i < pool->n; i++)
		proxy_backend_close(&pool->ent[i].be);
	pthread_mutex_destroy(&pool->lock);
	free(pool->ent);
	free(pool);
}

/* proxy_bepool_quiet - the kept connection has neither closed nor
 * spoken (a backend that timed the session out says 421 and closes). */
static int
proxy_bepool_quiet(const struct proxy_backend *b)
{
	struct pollfd p = { .fd = b->io.fd, .events = POLLIN };

	return b->io.fd >= 0 && proxy_io_pending(&b->io) == 0 &&
	    poll(&p, 1, 0) == 0;
}

int
proxy_bepool_take(struct proxy_bepool *pool, const char *spec,
    struct proxy_backend *b)
{
	long long now = util_mono_ms();

	for (size_t tries = 0; tries < pool->max + 1; tries++) {
		struct proxy_bepool_ent e;
		int found = 0;

		pthread_mutex_lock(&pool->lock);
		/* Newest first; any that waited too long are dropped below. */
		for (size_t i = pool->n; i-- > 0;)
			if (strcmp(pool->ent[i].be.name, spec) == 0) {
				e = pool->ent[i];
				memmove(&pool->ent[i], &pool->ent[i + 1],
				    (pool->n - i - 1) * sizeof(pool->ent[0]));
				pool->n--;
				found = 1;
				break;
			}
		pthread_mutex_unlock(&pool->lock);
		if (!found)
			return 0;
		if (now - e.since <= pool->idle_ms && proxy_bepool_quiet(&e.be)) {
			*b = e.be;
			return 1;
		}
		proxy_backend_close(&e.be);
	}
	return 0;
}

void
proxy_bepool_give(struct proxy_bepool *pool, struct proxy_backend *b)
{
	struct proxy_bepool_ent drop;
	int dropped = 0;

	if (pool->max == 0) {
		proxy_backend_close(b);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	if (pool->n == pool->max) {
		drop = pool->ent[0];
		memmove(&pool->ent[0], &pool->ent[1],
		    (pool->n - 1) * sizeof(pool->ent[0]));
		pool->n--;
		dropped = 1;
	}
	pool->ent[pool->n].be = *b;
	pool->ent[pool->n].since = util_mono_ms();
	pool->n++;
	pthread_mutex_unlock(&pool->lock);
	memset(b, 0, sizeof(*b));
	b->io.fd = -1;
	if (dropped)
		proxy_backend_close(&drop.be);
}
