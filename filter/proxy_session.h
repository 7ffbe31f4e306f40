/*
 * proxy_session.h - one SMTP client connection of the proxy: the state
 * machine that checks each command with the engine and relays it to the
 * backend in lockstep.
 */
#ifndef MXW_PROXY_SESSION_H
#define MXW_PROXY_SESSION_H

#include <sys/socket.h>

struct eng;
struct proxy_tls;

/* What the listener knows about a connection before the session runs. */
struct proxy_conn {
	struct proxy_tls	*tls;		/* NULL: no TLS configured */
	struct proxy_tls	*be_tls;	/* NULL: plain to the backend */
	int			 implicit_tls;	/* accepted on proxy_listen_tls */
	int			 upstream;	/* from proxy_trusted_upstreams:
						 * a PROXY header comes first */
};

/*
 * proxy_session_run - serve the accepted client socket fd until the
 * client quits, the session fails or the socket is shut down (the
 * listener does that at shutdown). Takes ownership of fd (closed on
 * return). peer is the client's address from accept(); conn is
 * borrowed. Blocks; called on the session's own thread.
 */
void	proxy_session_run(struct eng *e, int fd, const struct sockaddr *peer,
	    const struct proxy_conn *conn);

#endif
