/*
 * proxy.c - the SMTP proxy's listeners and accept loop.
 *
 * Called by filter/main.c: proxy_open() binds while the process is still
 * privileged and reads the TLS certificate and key (proxy_tls.c) then;
 * proxy_run() serves until SIGTERM/SIGINT. Owns the listening sockets
 * (plain and implicit-TLS), the TLS context and the table of running
 * sessions (for the total and per-IP connection limits and to wake idle
 * sessions at shutdown). A connection over a limit gets 421 4.7.0 here,
 * before any thread, engine check or backend connection.
 *
 * Concurrency model: one thread per client connection with blocking,
 * timeout-bounded I/O (poll). The engine's checks block on DNS anyway
 * (libunbound's synchronous resolve, libspf2, libopendkim), so a thread
 * per session keeps each session a straight-line state machine and no
 * slow DNS answer holds up another client's I/O. The cost is one thread
 * (a mostly untouched stack) per connection, bounded by
 * proxy_max_connections. XXX the issue asks for an event loop with a
 * worker pool for thousands of idle connections; this is the first step.
 *
 * Thread safety: the session table is guarded by a mutex; the accept
 * loop is the only thread touching the listeners. SIGTERM, SIGINT and
 * SIGHUP are blocked in every thread and read through a signalfd here;
 * SIGHUP is handed to the reload thread as SIGUSR1.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "proxy.h"
#include "proxy_pp.h"
#include "proxy_session.h"
#include "proxy_tls.h"
#include "util.h"

#define PROXY_MAX_LISTEN	16
#define PROXY_DRAIN_S		20	/* wait for sessions at shutdown */

struct proxy {
	int		 lfd[PROXY_MAX_LISTEN];
	int		 ltls[PROXY_MAX_LISTEN];	/* implicit TLS */
	size_t		 nlfd;
	int		 max_conn;
	int		 max_per_ip;
	char		*upstreams;	/* proxy_trusted_upstreams */
	struct proxy_tls *tls;
	struct proxy_tls *be_tls;	/* proxy_backend_tls = yes */
	struct eng	*eng;
	pthread_mutex_t	 lock;
	pthread_cond_t	 idle;
	int		*sess_fd;	/* client fds of running sessions */
	char		(*sess_ip)[INET6_ADDRSTRLEN];	/* and their peers */
	int		 nsess;
	int		 stopping;
};

struct proxy_job {
	struct proxy		*p;
	int			 fd;
	struct sockaddr_storage	 ss;
	struct proxy_conn	 conn;
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
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
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

struct proxy *
proxy_open(const struct cfg *cfg, char *err, size_t errlen)
{
	struct proxy *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->max_conn = cfg->proxy_max_connections;
	p->max_per_ip = cfg->proxy_max_per_ip;
	p->sess_fd = xcalloc((size_t)p->max_conn, sizeof(*p->sess_fd));
	p->sess_ip = xcalloc((size_t)p->max_conn, sizeof(*p->sess_ip));
	p->upstreams = xstrdup(cfg->proxy_trusted_upstreams);
	if (proxy_ip_list_check(p->upstreams, err, errlen) != 0 ||
	    proxy_ip_list_check(cfg->proxy_bare_lf_exempt, err, errlen) != 0)
		goto fail;
	if (cfg->tls_cert_file[0] != '\0' &&
	    (p->tls = proxy_tls_new(cfg, err, errlen)) == NULL)
		goto fail;
	if (cfg->proxy_backend_tls &&
	    (p->be_tls = proxy_tls_client_new(err, errlen)) == NULL)
		goto fail;
	if (cfg->proxy_listen_tls[0] != '\0' && p->tls == NULL) {
		str_fmt(err, errlen, "proxy_listen_tls needs tls_cert_file");
		goto fail;
	}
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
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nlfd; i++)
		if (p->lfd[i] >= 0)
			close(p->lfd[i]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->idle);
	proxy_tls_free(p->tls);
	proxy_tls_free(p->be_tls);
	free(p->upstreams);
	free(p->sess_fd);
	free(p->sess_ip);
	free(p);
}

/* proxy_sess_add / proxy_sess_del - the running-session table. Returns
 * 0, or the limit that refused it: 1 total, 2 per IP (only when per_ip
 * is set), 3 stopping. */
static int
proxy_sess_add(struct proxy *p, int fd, const char *ip, int per_ip)
{
	int rc = 0, same = 0;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; per_ip && i < p->nsess; i++)
		same += strcmp(p->sess_ip[i], ip) == 0;
	if (p->stopping)
		rc = 3;
	else if (p->nsess >= p->max_conn)
		rc = 1;
	else if (same >= p->max_per_ip)
		rc = 2;
	if (rc == 0) {
		p->sess_fd[p->nsess] = fd;
		str_copy(p->sess_ip[p->nsess], ip, sizeof(p->sess_ip[0]));
		p->nsess++;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static void
proxy_sess_del(struct proxy *p, int fd)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->nsess; i++)
		if (p->sess_fd[i] == fd) {
			p->nsess--;
			p->sess_fd[i] = p->sess_fd[p->nsess];
			memcpy(p->sess_ip[i], p->sess_ip[p->nsess],
			    sizeof(p->sess_ip[0]));
			break;
		}
	if (p->nsess == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

static void *
proxy_thread(void *arg)
{
	struct proxy_job *j = arg;
	int fd = j->fd;

	/* The session closes fd; the slot is released after that. XXX a
	 * shutdown() at stop can hit the number reused in between: only
	 * another session that is being stopped anyway. */
	proxy_session_run(j->p->eng, fd, (struct sockaddr *)&j->ss, &j->conn);
	proxy_sess_del(j->p, fd);
	free(j);
	return NULL;
}

/* proxy_refuse - over a limit: 421 without a thread. */
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

static void
proxy_accept(struct proxy *p, size_t li)
{
	struct proxy_job *j = xcalloc(1, sizeof(*j));
	socklen_t sl = sizeof(j->ss);
	char ip[INET6_ADDRSTRLEN];
	pthread_attr_t attr;
	pthread_t tid;
	int port, lim;

	j->p = p;
	j->fd = accept4(p->lfd[li], (struct sockaddr *)&j->ss, &sl, SOCK_CLOEXEC);
	if (j->fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			log_errno("proxy: accept");
		free(j);
		return;
	}
	proxy_sockaddr_ip((struct sockaddr *)&j->ss, ip, sizeof(ip), &port);
	j->conn.tls = p->tls;
	j->conn.be_tls = p->be_tls;
	j->conn.implicit_tls = p->ltls[li];
	j->conn.upstream = p->upstreams[0] != '\0' &&
	    proxy_ip_in_list(ip, p->upstreams) == 1;
	/* A trusted upstream (load balancer) carries many clients: the
	 * per-IP limit does not apply to its own address, only the total.
	 * XXX the clients' addresses come later, in the PROXY header; a
	 * per-client limit behind the balancer is not applied yet. */
	if ((lim = proxy_sess_add(p, j->fd, ip, !j->conn.upstream)) != 0) {
		if (lim == 2)
			log_warn("proxy: [%s]:%d PER-IP CONNECTION LIMIT %d"
			    " reached: 421", ip, port, p->max_per_ip);
		else
			log_warn("proxy: [%s]:%d CONNECTION LIMIT %d reached: 421",
			    ip, port, p->max_conn);
		proxy_refuse(j->fd, lim == 2);
		free(j);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, proxy_thread, j) != 0) {
		log_errno("proxy: pthread_create");
		proxy_sess_del(p, j->fd);
		proxy_refuse(j->fd, 0);
		free(j);
	}
	pthread_attr_destroy(&attr);
}

/* proxy_drain - stop: wake idle sessions, wait (bounded) for all. */
static int
proxy_drain(struct proxy *p)
{
	struct timespec until;
	int left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += PROXY_DRAIN_S;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	for (int i = 0; i < p->nsess; i++)
		(void)shutdown(p->sess_fd[i], SHUT_RD);
	while (p->nsess > 0)
		if (pthread_cond_timedwait(&p->idle, &p->lock, &until) == ETIMEDOUT)
			break;
	left = p->nsess;
	pthread_mutex_unlock(&p->lock);
	return left;
}

int
proxy_run(struct proxy *p, struct eng *e, char *err, size_t errlen)
{
	struct pollfd pfd[PROXY_MAX_LISTEN + 1];
	sigset_t set;
	int sfd, left, stop = 0;

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
	for (size_t i = 0; i < p->nlfd; i++)
		pfd[i] = (struct pollfd){ .fd = p->lfd[i], .events = POLLIN };
	pfd[p->nlfd] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	while (!stop) {
		if (poll(pfd, p->nlfd + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_errno("proxy: poll");
			break;
		}
		for (size_t i = 0; i < p->nlfd; i++)
			if (pfd[i].revents & POLLIN)
				proxy_accept(p, i);
		if (pfd[p->nlfd].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					/* The reload thread (filter/reload.c)
					 * waits for SIGUSR1; hand it over. */
					log_info("proxy: SIGHUP: reloading");
					kill(getpid(), SIGUSR1);
				} else
					stop = 1;
			}
		}
	}
	close(sfd);
	for (size_t i = 0; i < p->nlfd; i++) {
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
