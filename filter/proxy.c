/*
 * proxy.c - the SMTP proxy's listeners, event loop and worker pool.
 *
 * Called by filter/main.c: proxy_open() binds while the process is still
 * privileged and reads the TLS certificate and key (proxy_tls.c) then;
 * proxy_run() serves until SIGTERM/SIGINT. Owns the listening sockets
 * (plain and implicit-TLS), the TLS contexts, the epoll instance, the
 * worker threads and the table of running sessions (for the total and
 * per-IP connection limits, and to wake idle sessions at shutdown). A
 * connection over a limit gets 421 4.7.0 here, before any engine check
 * or backend connection.
 *
 * Concurrency model: event-driven. Every client socket waits in one
 * epoll instance, and so do the listeners and one timerfd for the
 * sessions' deadlines; a waiting connection costs its session memory
 * and no thread. A pool of workers (PROXY_MIN_WORKERS) all wait in
 * epoll_wait(); the worker that gets an event claims the session and
 * steps it (proxy_session_step()) until it would wait again, then parks
 * it: deadline set, and the socket it waits on watched. The client
 * socket is watched edge-triggered and stays armed (changed only when
 * the session waits for room to write instead of input): an event that
 * comes while the session waits for something else only marks input to
 * be read (cli_edge, passed on by proxy_session_client_readable()). The
 * backend socket is armed for one event (EPOLLONESHOT) at each wait for
 * a reply, since a kept connection moves from session to session.
 * DNS lookups, database writes and
 * the rarer backend exchanges run inside a step and block that worker;
 * the main thread looks every PROXY_POOL_CHECK_MS, and when events are
 * waiting while no worker is idle and none has finished an event since,
 * it adds one (up to PROXY_MAX_WORKERS; extra workers idle for
 * PROXY_WORKER_IDLE_S end), so other connections' I/O goes on. Workers
 * that are merely busy get no company: on a loaded machine more threads
 * would only switch more.
 *
 * A session is run by one worker at a time: its state word (ENT_PARKED,
 * ENT_RUNNING, ENT_NOTIFIED) is claimed with compare-and-swap; an event
 * for a running session marks it NOTIFIED and the running worker steps
 * it once more before parking. Events carry a slot and a generation, so
 * an event for a session that has just ended finds nothing. Deadlines:
 * the timerfd fires at the earliest one; the sweep claims the parked
 * sessions that are due and hands them to workers (the due list) with
 * timed_out set.
 *
 * Thread safety: the session table, the due list, the timer and the
 * worker count each have their mutex; SIGTERM, SIGINT and SIGHUP are
 * blocked in every thread and read through a signalfd by proxy_run()'s
 * thread; SIGHUP is handed to the reload thread as SIGUSR1.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "proxy.h"
#include "proxy_bepool.h"
#include "proxy_pp.h"
#include "proxy_session.h"
#include "proxy_tls.h"
#include "util.h"

#define PROXY_MAX_LISTEN	16
#define PROXY_DRAIN_S		20	/* wait for sessions at shutdown */
#define PROXY_MIN_WORKERS	4
#define PROXY_MAX_WORKERS	128
#define PROXY_WORKER_IDLE_S	60	/* an extra worker idle this long ends */
#define PROXY_POOL_CHECK_MS	20	/* how often the pool is looked at */
#define PROXY_BEPOOL_IDLE_MS	20000	/* a kept backend connection's life */

/* epoll data: a session is (generation << 32 | slot); the rest are
 * slots past any session's. */
#define EV_TIMER	0xffffff00u
#define EV_WAKE		0xffffff01u	/* the due list has work */
#define EV_EXIT		0xffffff02u
#define EV_LISTEN	0xffffff10u	/* + listener index */
/* A session's events carry its slot and generation (31 bits); the top
 * bit says the backend socket is ready rather than the client's. */
#define EV_GEN_MASK	0x7fffffffu
#define EV_BACKEND	(1ULL << 63)

enum { ENT_PARKED, ENT_RUNNING, ENT_NOTIFIED };

/* One running session as the event loop sees it. */
struct proxy_ent {
	struct proxy_sess	*s;
	struct proxy_conn	 conn;
	struct proxy		*p;
	int			 fd;
	uint32_t		 slot, gen;
	uint32_t		 cli_events;	/* the client socket's in the
						 * epoll set, 0: not in it */
	atomic_int		 cli_edge;	/* it reported input since
						 * the session last ran */
	atomic_int		 run;		/* ENT_* */
	atomic_llong		 deadline;	/* util_mono_ms() */
	int			 timed_out;	/* set by the sweep */
	struct proxy_ent	*next_due;
	char			 ip[INET6_ADDRSTRLEN];	/* "": not counted
							 * per IP (yet) */
};

struct proxy {
	int		 lfd[PROXY_MAX_LISTEN];
	int		 ltls[PROXY_MAX_LISTEN];	/* implicit TLS */
	size_t		 nlfd;
	int		 max_conn;
	int		 max_per_ip;
	char		*upstreams;	/* proxy_trusted_upstreams */
	struct proxy_tls *tls;
	struct proxy_tls *be_tls;	/* proxy_backend_tls = yes */
	struct proxy_bepool *bepool;	/* proxy_backend_reuse */
	struct eng	*eng;
	int		 epfd, tfd, wakefd, exitfd;

	pthread_mutex_t	 lock;		/* the session table: */
	pthread_cond_t	 idle;
	struct proxy_ent **ent;		/* max_conn slots */
	uint32_t	 gen;
	int		 nsess;
	int		 stopping;

	pthread_mutex_t	 dlock;		/* the due list */
	struct proxy_ent *due;

	pthread_mutex_t	 tlock;		/* the timer: */
	atomic_llong	 timer_at;	/* when the timerfd fires; 0 unarmed */

	pthread_mutex_t	 wlock;		/* the workers: */
	pthread_cond_t	 wdone;
	int		 nworkers;
	atomic_int	 nidle;
	atomic_ullong	 progress;	/* events finished, for proxy_pool_check */
	atomic_int	 exiting;
};

/* proxy_split_listen - "a:p", "[v6]:p", "a", "[v6]" into host and port. */
static int
proxy_split_listen(const char *tok, char *host, size_t hostlen, char *port,
    size_t portlen, const char *defport)
{
	const char *p = NULL;

	if (tok[0] == '[') {
		const char *rb = strchr(tok, ']');

		if (rb == NULL || (rb[1] != '\0' && rb[1] != ':') ||
		    (size_t)(rb - tok) > hostlen)
			return -1;
		memcpy(host, tok + 1, (size_t)(rb - tok - 1));
		host[rb - tok - 1] = '\0';
		p = rb[1] == ':' ? rb + 2 : NULL;
	} else {
		const char *c = strchr(tok, ':');

		if (c != NULL && strchr(c + 1, ':') != NULL)
			return -1;	/* bare IPv6 needs brackets */
		if (str_copy(host, tok, hostlen) != 0)
			return -1;
		if (c != NULL) {
			host[c - tok] = '\0';
			p = c + 1;
		}
	}
	return str_copy(port, p != NULL ? p : defport, portlen);
}

/* proxy_bind_one - one listening socket; -1 with a reason. */
static int
proxy_bind_one(const char *tok, const char *defport, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[16];
	int fd, r, one = 1;

	if (proxy_split_listen(tok, host, sizeof(host), port, sizeof(port),
	    defport) != 0) {
		str_fmt(err, errlen, "proxy_listen: bad address \"%s\"", tok);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		str_fmt(err, errlen, "proxy_listen: \"%s\": %s", tok,
		    gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		str_fmt(err, errlen, "proxy_listen: socket: %s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
		str_fmt(err, errlen, "proxy_listen: %s: %s", tok, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* proxy_bind_list - every address of one listen key. */
static int
proxy_bind_list(struct proxy *p, const char *value, int tls, char *err,
    size_t errlen)
{
	char *list = xstrdup(value), *save = NULL;
	int rc = 0;

	for (char *tok = strtok_r(list, " ,\t", &save); tok != NULL;
	    tok = strtok_r(NULL, " ,\t", &save)) {
		int fd;

		if (p->nlfd == PROXY_MAX_LISTEN) {
			str_fmt(err, errlen, "proxy_listen: more than %d addresses",
			    PROXY_MAX_LISTEN);
			rc = -1;
			break;
		}
		if ((fd = proxy_bind_one(tok, tls ? "465" : "25", err, errlen)) < 0) {
			rc = -1;
			break;
		}
		p->ltls[p->nlfd] = tls;
		p->lfd[p->nlfd++] = fd;
		log_info("proxy: listening on %s%s", tok, tls ? " (implicit TLS)" : "");
	}
	free(list);
	return rc;
}

/* proxy_fd_limit - each session holds two descriptors (client and
 * backend, a spool file in DATA): raise the soft limit to the hard one,
 * and warn when even that is short of proxy_max_connections. */
static void
proxy_fd_limit(int max_conn)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)max_conn * 3 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_errno("proxy: setrlimit(RLIMIT_NOFILE)");
	}
	if (rl.rlim_cur < need)
		log_warn("proxy: open files limited to %llu, fewer than the %llu"
		    " that proxy_max_connections = %d may need",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)need,
		    max_conn);
}

/*
 * proxy_settings - what the proxy takes from cfg besides its listeners:
 * the address lists checked, the TLS contexts made (*tls for clients,
 * with tls_cert_file; *be_tls towards the backend, with
 * proxy_backend_tls; NULL when not configured). 0, or -1 with a reason
 * in err and nothing to free.
 */
static int
proxy_settings(const struct cfg *cfg, struct proxy_tls **tls,
    struct proxy_tls **be_tls, char *err, size_t errlen)
{
	*tls = *be_tls = NULL;
	if (proxy_ip_list_check(cfg->proxy_trusted_upstreams, err, errlen) != 0 ||
	    proxy_ip_list_check(cfg->proxy_bare_lf_exempt, err, errlen) != 0)
		return -1;
	if (cfg->tls_cert_file[0] != '\0' &&
	    (*tls = proxy_tls_new(cfg, err, errlen)) == NULL)
		return -1;
	if (cfg->proxy_backend_tls &&
	    (*be_tls = proxy_tls_client_new(cfg, err, errlen)) == NULL) {
		proxy_tls_free(*tls);
		*tls = NULL;
		return -1;
	}
	if (cfg->proxy_listen_tls[0] != '\0' && *tls == NULL) {
		str_fmt(err, errlen, "proxy_listen_tls needs tls_cert_file");
		proxy_tls_free(*be_tls);
		*be_tls = NULL;
		return -1;
	}
	return 0;
}

int
proxy_check_config(const struct cfg *cfg, char *err, size_t errlen)
{
	struct proxy_tls *tls, *be_tls;

	if (proxy_settings(cfg, &tls, &be_tls, err, errlen) != 0)
		return -1;
	proxy_tls_free(tls);
	proxy_tls_free(be_tls);
	return 0;
}

struct proxy *
proxy_open(const struct cfg *cfg, char *err, size_t errlen)
{
	struct proxy *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	pthread_mutex_init(&p->dlock, NULL);
	pthread_mutex_init(&p->tlock, NULL);
	pthread_mutex_init(&p->wlock, NULL);
	pthread_cond_init(&p->wdone, NULL);
	p->epfd = p->tfd = p->wakefd = p->exitfd = -1;
	p->max_conn = cfg->proxy_max_connections;
	p->max_per_ip = cfg->proxy_max_per_ip;
	p->ent = xcalloc((size_t)p->max_conn, sizeof(*p->ent));
	proxy_fd_limit(p->max_conn);
	p->bepool = proxy_bepool_new((size_t)cfg->proxy_backend_reuse,
	    PROXY_BEPOOL_IDLE_MS);
	p->upstreams = xstrdup(cfg->proxy_trusted_upstreams);
	if (proxy_settings(cfg, &p->tls, &p->be_tls, err, errlen) != 0)
		goto fail;
	if (proxy_bind_list(p, cfg->proxy_listen, 0, err, errlen) != 0 ||
	    proxy_bind_list(p, cfg->proxy_listen_tls, 1, err, errlen) != 0)
		goto fail;
	if (p->nlfd == 0) {
		str_fmt(err, errlen, "proxy_listen: no address");
		goto fail;
	}
	return p;
fail:
	proxy_free(p);
	return NULL;
}

void
proxy_free(struct proxy *p)
{
	int busy;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->wlock);
	busy = p->nworkers > 0;
	pthread_mutex_unlock(&p->wlock);
	if (busy)
		return;	/* a worker is stuck in a session: the process exits */
	for (size_t i = 0; i < p->nlfd; i++)
		if (p->lfd[i] >= 0)
			close(p->lfd[i]);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->tfd >= 0)
		close(p->tfd);
	if (p->wakefd >= 0)
		close(p->wakefd);
	if (p->exitfd >= 0)
		close(p->exitfd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->dlock);
	pthread_mutex_destroy(&p->tlock);
	pthread_mutex_destroy(&p->wlock);
	pthread_cond_destroy(&p->wdone);
	proxy_bepool_free(p->bepool);
	proxy_tls_free(p->tls);
	proxy_tls_free(p->be_tls);
	free(p->upstreams);
	free(p->ent);
	free(p);
}

/* ---- the session table ---- */

/* proxy_count_ip - sessions counted for ip, other than self; p->lock
 * held. */
static int
proxy_count_ip(const struct proxy *p, const char *ip,
    const struct proxy_ent *self)
{
	int same = 0;

	for (int i = 0; i < p->max_conn; i++)
		if (p->ent[i] != NULL && p->ent[i] != self &&
		    strcmp(p->ent[i]->ip, ip) == 0)
			same++;
	return same;
}

/* proxy_ent_add - a slot for e (counted for ip unless ip is ""). Returns
 * 0, or the limit that refused it: 1 total, 2 per IP, 3 stopping. */
static int
proxy_ent_add(struct proxy *p, struct proxy_ent *e, const char *ip)
{
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->stopping)
		rc = 3;
	else if (p->nsess >= p->max_conn)
		rc = 1;
	else if (ip[0] != '\0' && proxy_count_ip(p, ip, NULL) >= p->max_per_ip)
		rc = 2;
	if (rc == 0) {
		for (int i = 0; i < p->max_conn; i++)
			if (p->ent[i] == NULL) {
				e->slot = (uint32_t)i;
				break;
			}
		e->gen = ++p->gen & EV_GEN_MASK;
		str_copy(e->ip, ip, sizeof(e->ip));
		p->ent[e->slot] = e;
		p->nsess++;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* proxy_admit - conn->admit for a trusted upstream's session: its real
 * client, from the PROXY header, is held to the per-IP limit. */
static int
proxy_admit(void *ctx, const char *ip)
{
	struct proxy_ent *e = ctx;
	struct proxy *p = e->p;
	int over;

	pthread_mutex_lock(&p->lock);
	over = proxy_count_ip(p, ip, e) >= p->max_per_ip;
	if (!over)
		str_copy(e->ip, ip, sizeof(e->ip));
	pthread_mutex_unlock(&p->lock);
	if (over)
		log_warn("proxy: [%s] PER-IP CONNECTION LIMIT %d reached (behind"
		    " a trusted upstream): 421", ip, p->max_per_ip);
	return over;
}

/* proxy_ent_end - the session is over: out of the epoll set and the
 * table (an event still on its way finds the slot empty), then freed. */
static void
proxy_ent_end(struct proxy *p, struct proxy_ent *e)
{
	if (e->cli_events != 0)
		(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, e->fd, NULL);
	pthread_mutex_lock(&p->lock);
	p->ent[e->slot] = NULL;
	if (--p->nsess == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	proxy_session_free(e->s);	/* closes e->fd */
	free(e);
}

/* ---- deadlines ---- */

/* proxy_timer_at - make the timerfd fire no later than at. */
static void
proxy_timer_at(struct proxy *p, long long at)
{
	long long cur = atomic_load(&p->timer_at);

	if (cur != 0 && cur <= at)
		return;
	pthread_mutex_lock(&p->tlock);
	cur = atomic_load(&p->timer_at);
	if (cur == 0 || at < cur) {
		struct itimerspec its;

		memset(&its, 0, sizeof(its));
		its.it_value.tv_sec = at / 1000;
		its.it_value.tv_nsec = (at % 1000) * 1000000;
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;	/* 0 would disarm */
		if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
			log_errno("proxy: timerfd_settime");
		atomic_store(&p->timer_at, at);
	}
	pthread_mutex_unlock(&p->tlock);
}

static void proxy_ent_run(struct proxy *p, struct proxy_ent *e, int timed_out);

/* proxy_due_run - step the sessions the sweep found due, one at a time,
 * waking another worker while more are waiting. */
static void
proxy_due_run(struct proxy *p)
{
	for (;;) {
		struct proxy_ent *e;
		int more;

		pthread_mutex_lock(&p->dlock);
		if ((e = p->due) != NULL)
			p->due = e->next_due;
		more = p->due != NULL;
		pthread_mutex_unlock(&p->dlock);
		if (e == NULL)
			return;
		if (more) {
			uint64_t one = 1;

			(void)!write(p->wakefd, &one, sizeof(one));
		}
		proxy_ent_run(p, e, e->timed_out);
	}
}

/*
 * proxy_sweep - the timerfd fired: claim the parked sessions whose
 * deadline has passed (timed_out), re-arm the timer for the earliest
 * remaining one, run the due ones. A session claimed just after it had
 * re-parked with a new deadline is stepped without timed_out (a
 * spurious wake, which a step tolerates).
 */
static void
proxy_sweep(struct proxy *p)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT,
		.data.u64 = EV_TIMER };
	uint64_t n;
	long long now = util_mono_ms(), next = 0;
	struct proxy_ent *due = NULL;

	(void)!read(p->tfd, &n, sizeof(n));
	pthread_mutex_lock(&p->tlock);
	atomic_store(&p->timer_at, 0);
	pthread_mutex_unlock(&p->tlock);
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->max_conn; i++) {
		struct proxy_ent *e = p->ent[i];
		long long dl;
		int st = ENT_PARKED;

		if (e == NULL)
			continue;
		dl = atomic_load(&e->deadline);
		if (dl > now) {
			if (next == 0 || dl < next)
				next = dl;
		} else if (atomic_compare_exchange_strong(&e->run, &st,
		    ENT_RUNNING)) {
			e->timed_out = atomic_load(&e->deadline) <= now;
			e->next_due = due;
			due = e;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (next != 0)
		proxy_timer_at(p, next);
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->tfd, &ev) != 0)
		log_errno("proxy: epoll_ctl(timer)");
	if (due == NULL)
		return;
	pthread_mutex_lock(&p->dlock);
	for (struct proxy_ent *e = due, *nx; e != NULL; e = nx) {
		nx = e->next_due;
		e->next_due = p->due;
		p->due = e;
	}
	pthread_mutex_unlock(&p->dlock);
	proxy_due_run(p);
}

/* ---- running sessions ---- */

/*
 * proxy_ent_watch_client - the client socket in the epoll set for what
 * the session waits for: input or room for output, edge-triggered, so
 * that it stays armed across waits and is changed only when the wait
 * changes (no epoll_ctl per command). -1 on error.
 */
static int
proxy_ent_watch_client(struct proxy *p, struct proxy_ent *e, enum proxy_wait w)
{
	struct epoll_event ev;
	uint32_t want = EPOLLET | (w == PW_WRITE ? EPOLLOUT :
	    EPOLLIN | EPOLLRDHUP);

	if (want == e->cli_events)
		return 0;
	ev.events = want;
	ev.data.u64 = (uint64_t)e->gen << 32 | e->slot;
	if (epoll_ctl(p->epfd, e->cli_events != 0 ? EPOLL_CTL_MOD :
	    EPOLL_CTL_ADD, e->fd, &ev) != 0)
		return -1;
	e->cli_events = want;
	return 0;
}

/*
 * proxy_ent_watch_backend - the backend socket, for one event (it may be
 * new, or kept from another session and registered then with that
 * one's data). -1 on error.
 */
static int
proxy_ent_watch_backend(struct proxy *p, struct proxy_ent *e, enum proxy_wait w)
{
	struct epoll_event ev;
	int bfd = proxy_session_backend_fd(e->s);

	ev.events = EPOLLONESHOT | (w == PW_BACKEND_OUT ? EPOLLOUT :
	    EPOLLIN | EPOLLRDHUP);
	ev.data.u64 = (uint64_t)e->gen << 32 | e->slot | EV_BACKEND;
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, bfd, &ev) != 0 &&
	    (errno != ENOENT || epoll_ctl(p->epfd, EPOLL_CTL_ADD, bfd, &ev) != 0))
		return -1;
	return 0;
}

/*
 * proxy_ent_run - step the claimed session e until it waits (then park
 * it: deadline, interest set, claim released) or ends. An event that
 * came while it ran (ENT_NOTIFIED) makes it step once more. Input the
 * client socket reported (cli_edge) is passed to the session first: with
 * edge-triggered events it must read before it waits again.
 */
static void
proxy_ent_run(struct proxy *p, struct proxy_ent *e, int timed_out)
{
	for (;;) {
		enum proxy_wait w;
		long long dl;
		int wait_ms, st = ENT_RUNNING;

		if (atomic_exchange(&e->cli_edge, 0))
			proxy_session_client_readable(e->s);
		w = proxy_session_step(e->s, timed_out, &wait_ms);
		if (w == PW_DONE) {
			proxy_ent_end(p, e);
			return;
		}
		dl = util_mono_ms() + (wait_ms > 0 ? wait_ms : 1);
		atomic_store(&e->deadline, dl);
		proxy_timer_at(p, dl);
		if (w == PW_BACKEND || w == PW_BACKEND_OUT) {
			if (proxy_ent_watch_backend(p, e, w) != 0) {
				log_errno("proxy: epoll_ctl(backend)");
				proxy_ent_end(p, e);
				return;
			}
		} else if (proxy_ent_watch_client(p, e, w) != 0) {
			log_errno("proxy: epoll_ctl");
			proxy_ent_end(p, e);
			return;
		}
		if (atomic_compare_exchange_strong(&e->run, &st, ENT_PARKED))
			return;
		/* NOTIFIED: something came while the step ran. */
		atomic_store(&e->run, ENT_RUNNING);
		timed_out = 0;
	}
}

/* proxy_event_sess - an event for the session in slot (of generation
 * gen), from its client socket or (backend) the backend's: claim it, or
 * tell its running worker. */
static void
proxy_event_sess(struct proxy *p, uint32_t slot, uint32_t gen, int backend)
{
	struct proxy_ent *e = NULL;
	int claimed = 0;

	pthread_mutex_lock(&p->lock);
	if (slot < (uint32_t)p->max_conn && p->ent[slot] != NULL &&
	    p->ent[slot]->gen == gen)
		e = p->ent[slot];
	if (e != NULL && !backend)
		atomic_store(&e->cli_edge, 1);
	for (int tries = 0; e != NULL && tries < 100; tries++) {
		int st = atomic_load(&e->run);

		if (st == ENT_NOTIFIED)
			break;
		if (atomic_compare_exchange_strong(&e->run, &st,
		    st == ENT_PARKED ? ENT_RUNNING : ENT_NOTIFIED)) {
			claimed = st == ENT_PARKED;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (claimed)
		proxy_ent_run(p, e, 0);
}

/* proxy_refuse - over a limit: 421 without a session. */
static void
proxy_refuse(int fd, int per_ip)
{
	static const char total[] = "421 4.7.0 Error: too many connections,"
	    " try again later\r\n";
	static const char perip[] = "421 4.7.0 Error: too many connections"
	    " from your address, try again later\r\n";

	if (per_ip)
		(void)send(fd, perip, sizeof(perip) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	else
		(void)send(fd, total, sizeof(total) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* proxy_accept - one connection from listener li (re-armed at once, so
 * another worker takes the next), then its first step here. */
static void
proxy_accept(struct proxy *p, size_t li)
{
	struct epoll_event lev = { .events = EPOLLIN | EPOLLONESHOT,
		.data.u64 = EV_LISTEN + li };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	struct proxy_ent *e;
	int fd, port, lim;

	fd = accept4(p->lfd[li], (struct sockaddr *)&ss, &sl,
	    SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->lfd[li], &lev) != 0)
		log_errno("proxy: epoll_ctl(listener)");
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			log_errno("proxy: accept");
		return;
	}
	proxy_sockaddr_ip((struct sockaddr *)&ss, ip, sizeof(ip), &port);
	e = xcalloc(1, sizeof(*e));
	e->p = p;
	e->fd = fd;
	atomic_init(&e->run, ENT_RUNNING);
	atomic_init(&e->cli_edge, 0);
	atomic_init(&e->deadline, 0);
	e->conn.tls = p->tls;
	e->conn.be_tls = p->be_tls;
	e->conn.implicit_tls = p->ltls[li];
	e->conn.upstream = p->upstreams[0] != '\0' &&
	    proxy_ip_in_list(ip, p->upstreams) == 1;
	/* A trusted upstream (load balancer) carries many clients: its own
	 * address is held to the total only; each client, once its PROXY
	 * header has named it, to the per-IP limit (proxy_admit). */
	e->conn.admit = proxy_admit;
	e->conn.admit_ctx = e;
	e->conn.bepool = p->bepool;
	e->conn.idle_workers = &p->nidle;
	if ((lim = proxy_ent_add(p, e, e->conn.upstream ? "" : ip)) != 0) {
		if (lim == 2)
			log_warn("proxy: [%s]:%d PER-IP CONNECTION LIMIT %d"
			    " reached: 421", ip, port, p->max_per_ip);
		else if (lim == 1)
			log_warn("proxy: [%s]:%d CONNECTION LIMIT %d reached: 421",
			    ip, port, p->max_conn);
		proxy_refuse(fd, lim == 2);
		free(e);
		return;
	}
	e->s = proxy_session_new(p->eng, fd, (struct sockaddr *)&ss, &e->conn);
	proxy_ent_run(p, e, 0);
}

/* ---- workers ---- */

static void *proxy_worker(void *arg);

/* proxy_worker_spawn - one more worker, unless at the maximum. */
static void
proxy_worker_spawn(struct proxy *p)
{
	pthread_attr_t attr;
	pthread_t tid;

	pthread_mutex_lock(&p->wlock);
	if (p->nworkers < PROXY_MAX_WORKERS && !atomic_load(&p->exiting)) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&tid, &attr, proxy_worker, p) == 0)
			p->nworkers++;
		else
			log_errno("proxy: pthread_create");
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&p->wlock);
}

/* proxy_event - one event from epoll. */
static void
proxy_event(struct proxy *p, const struct epoll_event *ev)
{
	uint32_t slot = (uint32_t)ev->data.u64;

	if (slot == EV_TIMER)
		proxy_sweep(p);
	else if (slot == EV_WAKE || slot == EV_EXIT)
		;	/* the due list is looked at below; exit by the caller */
	else if (slot >= EV_LISTEN && slot < EV_LISTEN + p->nlfd)
		proxy_accept(p, slot - EV_LISTEN);
	else
		proxy_event_sess(p, slot, (uint32_t)(ev->data.u64 >> 32) &
		    EV_GEN_MASK, (ev->data.u64 & EV_BACKEND) != 0);
	proxy_due_run(p);
}

/*
 * proxy_worker - wait in epoll_wait() and handle one event at a time;
 * an extra worker idle for PROXY_WORKER_IDLE_S ends.
 */
static void *
proxy_worker(void *arg)
{
	struct proxy *p = arg;
	int counted = 1;

	while (!atomic_load(&p->exiting)) {
		struct epoll_event ev;
		int n;

		atomic_fetch_add(&p->nidle, 1);
		n = epoll_wait(p->epfd, &ev, 1, PROXY_WORKER_IDLE_S * 1000);
		atomic_fetch_sub(&p->nidle, 1);
		if (atomic_load(&p->exiting))
			break;
		if (n < 0) {
			if (errno != EINTR) {
				log_errno("proxy: epoll_wait");
				(void)poll(NULL, 0, 100);
			}
			continue;
		}
		if (n == 0) {
			pthread_mutex_lock(&p->wlock);
			if (p->nworkers > PROXY_MIN_WORKERS) {
				p->nworkers--;
				counted = 0;
			}
			pthread_mutex_unlock(&p->wlock);
			if (!counted)
				break;
			continue;
		}
		proxy_event(p, &ev);
		atomic_fetch_add(&p->progress, 1);
	}
	pthread_mutex_lock(&p->wlock);
	if (counted)
		p->nworkers--;
	pthread_cond_broadcast(&p->wdone);
	pthread_mutex_unlock(&p->wlock);
	return NULL;
}

/*
 * proxy_pool_check - every PROXY_POOL_CHECK_MS from the main thread:
 * when no worker is idle, events are waiting and no worker has finished
 * an event since the last look (*last), the workers are all held up (a
 * slow DNS answer, database or backend): one more worker.
 */
static void
proxy_pool_check(struct proxy *p, unsigned long long *last)
{
	unsigned long long done = atomic_load(&p->progress);
	struct pollfd ep = { .fd = p->epfd, .events = POLLIN };

	if (done == *last && atomic_load(&p->nidle) == 0 && poll(&ep, 1, 0) > 0)
		proxy_worker_spawn(p);
	*last = done;
}

/* proxy_poll_setup - the epoll set: listeners, timer, wake, exit. */
static int
proxy_poll_setup(struct proxy *p, char *err, size_t errlen)
{
	struct epoll_event ev;

	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->exitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->epfd < 0 || p->tfd < 0 || p->wakefd < 0 || p->exitfd < 0) {
		str_fmt(err, errlen, "epoll/timerfd/eventfd: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < p->nlfd; i++) {
		ev = (struct epoll_event){ .events = EPOLLIN | EPOLLONESHOT,
			.data.u64 = EV_LISTEN + i };
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->lfd[i], &ev) != 0)
			goto fail;
	}
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLONESHOT,
		.data.u64 = EV_TIMER };
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfd, &ev) != 0)
		goto fail;
	/* Edge-triggered: each write wakes one waiting worker. */
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET,
		.data.u64 = EV_WAKE };
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev) != 0)
		goto fail;
	/* Level-triggered and never read: wakes every worker, for good. */
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = EV_EXIT };
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->exitfd, &ev) != 0)
		goto fail;
	return 0;
fail:
	str_fmt(err, errlen, "epoll_ctl: %s", strerror(errno));
	return -1;
}

/* proxy_drain - stop: wake idle sessions (their reads see EOF), wait
 * (bounded) for all to end, then the workers. Returns the sessions
 * still running. */
static int
proxy_drain(struct proxy *p)
{
	struct timespec until;
	uint64_t one = 1;
	int left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += PROXY_DRAIN_S;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	for (int i = 0; i < p->max_conn; i++)
		if (p->ent[i] != NULL)
			(void)shutdown(p->ent[i]->fd, SHUT_RD);
	while (p->nsess > 0)
		if (pthread_cond_timedwait(&p->idle, &p->lock, &until) == ETIMEDOUT)
			break;
	left = p->nsess;
	pthread_mutex_unlock(&p->lock);
	if (left > 0)
		return left;
	atomic_store(&p->exiting, 1);
	(void)!write(p->exitfd, &one, sizeof(one));
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&p->wlock);
	while (p->nworkers > 0)
		if (pthread_cond_timedwait(&p->wdone, &p->wlock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&p->wlock);
	return 0;
}

int
proxy_run(struct proxy *p, struct eng *e, char *err, size_t errlen)
{
	struct pollfd pfd;
	sigset_t set;
	int sfd, left, stop = 0;
	unsigned long long last_done = 0;

	p->eng = e;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		str_fmt(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	if (proxy_poll_setup(p, err, errlen) != 0) {
		close(sfd);
		return -1;
	}
	for (int i = 0; i < PROXY_MIN_WORKERS; i++)
		proxy_worker_spawn(p);
	pfd = (struct pollfd){ .fd = sfd, .events = POLLIN };
	while (!stop) {
		struct signalfd_siginfo si;
		int r = poll(&pfd, 1, PROXY_POOL_CHECK_MS);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_errno("proxy: poll");
			break;
		}
		proxy_pool_check(p, &last_done);
		if (r == 0 || read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			/* The reload thread (filter/reload.c) waits for
			 * SIGUSR1; hand it over. */
			log_info("proxy: SIGHUP: reloading");
			kill(getpid(), SIGUSR1);
		} else {
			stop = 1;
		}
	}
	close(sfd);
	for (size_t i = 0; i < p->nlfd; i++) {
		(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->lfd[i], NULL);
		close(p->lfd[i]);
		p->lfd[i] = -1;
	}
	log_info("proxy: stopping");
	if ((left = proxy_drain(p)) > 0) {
		str_fmt(err, errlen, "%d proxy session(s) still open after %d s",
		    left, PROXY_DRAIN_S);
		return -1;
	}
	log_info("proxy: stopped");
	return 0;
}
