/*
 * proxy_session.h - one SMTP client connection of the proxy: the state
 * machine that checks each command with the engine and relays it to the
 * backend in lockstep. Event-driven: the session is stepped whenever its
 * client socket is ready (or its wait timed out) and says what to wait
 * for next; proxy.c's event loop does the waiting.
 */
#ifndef MXW_PROXY_SESSION_H
#define MXW_PROXY_SESSION_H

#include <stdatomic.h>
#include <sys/socket.h>

struct eng;
struct proxy_bepool;
struct proxy_sess;
struct proxy_tls;

/* What the listener knows about a connection before the session runs. */
struct proxy_conn {
	struct proxy_tls	*tls;		/* NULL: no TLS configured */
	struct proxy_tls	*be_tls;	/* NULL: plain to the backend */
	int			 implicit_tls;	/* accepted on proxy_listen_tls */
	int			 upstream;	/* from proxy_trusted_upstreams:
						 * a PROXY header comes first */
	/* admit - called with the client's address from an upstream's
	 * PROXY header: 0 admits it, non-zero means the per-IP limit is
	 * reached (the session answers 421 and ends). May be NULL. */
	int			(*admit)(void *ctx, const char *ip);
	void			*admit_ctx;
	struct proxy_bepool	*bepool;	/* NULL: no reuse */
	/* idle_workers - how many workers wait for events: while some do,
	 * a backend reply is waited for in the step a little (a thread
	 * switch less); else the worker moves on. May be NULL. */
	const atomic_int	*idle_workers;
};

/* What a session waits for after a step. */
enum proxy_wait {
	PW_READ,	/* the client socket readable */
	PW_WRITE,	/* the client socket writable */
	PW_BACKEND,	/* the backend socket readable (its reply) */
	PW_BACKEND_OUT,	/* the backend socket writable (connected) */
	PW_DONE,	/* the session is over: proxy_session_free() it */
};

/*
 * proxy_session_new - a session for the accepted client socket fd
 * (non-blocking from now; the session owns it and closes it in
 * proxy_session_free). peer is the address from accept(); conn is
 * borrowed and must outlive the session. Does no I/O: the first
 * proxy_session_step() does the connect stage.
 */
struct proxy_sess *proxy_session_new(struct eng *e, int fd,
	    const struct sockaddr *peer, const struct proxy_conn *conn);

/*
 * proxy_session_step - go on until the session would wait for its
 * client. timed_out: the last wait's time ran out (the session answers
 * as its phase requires: 421, or the banner after the greet pause).
 * Returns what to wait for, with the longest wait in *wait_ms, or
 * PW_DONE. Engine checks run inside the step; so do the backend's
 * XCLIENT, STARTTLS, AUTH and the rare commands, which may block this
 * thread up to their own timeouts. The backend's connect (PW_BACKEND_OUT)
 * and greeting, and its replies to HELO/EHLO, MAIL, RCPT, DATA, the
 * message and RSET are waited for with PW_BACKEND instead (with TLS to
 * the backend the replies are read in the step).
 */
enum proxy_wait proxy_session_step(struct proxy_sess *s, int timed_out,
	    int *wait_ms);

/* proxy_session_backend_fd - the socket PW_BACKEND(_OUT) waits on. */
int	proxy_session_backend_fd(const struct proxy_sess *s);

/* proxy_session_client_readable - the client's socket, watched
 * edge-triggered, reported input: the session reads it before it waits
 * again. */
void	proxy_session_client_readable(struct proxy_sess *s);

/* proxy_session_free - end the session: backend QUIT, log, close the
 * client socket, free everything. NULL is a no-op. */
void	proxy_session_free(struct proxy_sess *s);

#endif
