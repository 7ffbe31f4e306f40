/*
 * proxy_session.h - one SMTP client connection of the proxy: the state
 * machine that checks each command with the engine and relays it to the
 * backend in lockstep.
 */
#ifndef MXW_PROXY_SESSION_H
#define MXW_PROXY_SESSION_H

#include <sys/socket.h>

struct eng;

/*
 * proxy_session_run - serve the accepted client socket fd until the
 * client quits, the session fails or the socket is shut down (the
 * listener does that at shutdown). Takes ownership of fd (closed on
 * return). peer is the client's address from accept(). Blocks; called
 * on the session's own thread.
 */
void	proxy_session_run(struct eng *e, int fd, const struct sockaddr *peer);

#endif
