/*
 * proxy_session_int.h - the insides of a proxy session, shared by the
 * files that implement it (see proxy_session.c for the design):
 *   proxy_session.c       the phase machine, replies, verdicts, commands
 *   proxy_sess_backend.c  the backend connection: set-up, lockstep
 *                         exchanges, replies awaited in the event loop,
 *                         reuse
 *   proxy_sess_data.c     DATA: the message received, checked, delivered
 *   proxy_sess_auth.c     STARTTLS and AUTH
 * Not for use outside the proxy session.
 */
#ifndef MXW_PROXY_SESSION_INT_H
#define MXW_PROXY_SESSION_INT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "log.h"
#include "proxy_backend.h"
#include "proxy_bepool.h"
#include "proxy_io.h"
#include "proxy_msg.h"
#include "proxy_pp.h"
#include "proxy_session.h"
#include "proxy_spool.h"
#include "proxy_tls.h"
#include "proxy_verb.h"
#include "state.h"
#include "txn.h"
#include "util.h"

#define PROXY_MAX_ERRORS	20	/* bad commands before 421 */
#define PROXY_AUTH_ROUNDS	10	/* 334 challenges per AUTH */
#define PROXY_PP_READS		32	/* reads for an upstream's PROXY header */
#define PROXY_BE_LINGER_MS	20	/* a reply waited for in the step */

/* Where the session goes on when its client is ready. */
enum proxy_phase {
	PH_START,	/* accepted, nothing done yet */
	PH_UPSTREAM,	/* waiting for a trusted upstream's PROXY header */
	PH_TLS,		/* the server TLS handshake (implicit or STARTTLS) */
	PH_PREGREET,	/* the greet pause: the client should stay silent */
	PH_CMD,		/* waiting for a command line */
	PH_DATA,	/* receiving the message */
	PH_AUTH,	/* waiting for a SASL response line */
	PH_BEREPLY,	/* waiting for the backend's reply (be_wait) */
	PH_CLOSE,	/* writing the last replies */
	PH_DONE,
};

/* The command whose backend reply a session waits for in PH_BEREPLY;
 * the reply goes on in proxy_ph_bereply. */
enum proxy_be_wait {
	BW_NONE, BW_CONNECT, BW_GREETING, BW_HELO, BW_EHLO, BW_MAIL, BW_RCPT, BW_RSET,
	BW_DATA, BW_DOT,
};

enum proxy_rx {
	RX_MORE, RX_OK, RX_TOO_BIG, RX_LONG_LINE, RX_FRAMING, RX_SPOOL_ERR,
	RX_TIMEOUT, RX_GONE,
};

struct proxy_sess {
	struct txn		*t;
	const struct cfg	*cfg;
	struct proxy_io		 cli;
	struct proxy_backend	 be;
	struct proxy_reply	 r;		/* the last backend reply */
	const struct proxy_conn	*conn;
	enum proxy_state	 state;
	enum proxy_phase	 phase;
	char			 ip[INET6_ADDRSTRLEN];	/* the client */
	int			 port;
	char			 peer[INET6_ADDRSTRLEN + 16];	/* "[ip]:port" */
	char			 dst_ip[INET6_ADDRSTRLEN];	/* where it connected */
	int			 dst_port;
	int			 tls_on;	/* the client side is in TLS */
	int			 auth_done;	/* the backend answered 235 */
	int			 auth_tried;	/* AUTH went to the backend */
	int			 helo_plain;	/* HELO: PIPELINING not offered */
	int			 bare_lf_ok;	/* in proxy_bare_lf_exempt */
	int			 be_ehlo;	/* we sent our own EHLO */
	int			 be_reused;	/* a kept connection: caps known */
	const char		*be_owed;	/* "EHLO"/"HELO" sent, reply not read */
	int			 be_txn;	/* the backend holds a MAIL */
	int			 be_bdat;	/* the message went as BDAT */
	enum proxy_be_wait	 be_wait;	/* PH_BEREPLY: for what */
	const char		*be_what;	/* its name, for log lines */
	long long		 be_until;	/* util_mono_ms() deadline */
	int			 be_asked;	/* sent; nothing read yet */
	long long		 be_t0;		/* when the connection was begun */
	char			 be_addr[PROXY_PATH_MAX + 1]; /* BW_RCPT */
	struct proxy_msg	 msg;		/* the message being delivered */
	int			 msg_open;
	int			 xclient_done;
	int			 helo_done;	/* client HELO/EHLO answered 250 */
	int			 in_msg;	/* the txn holds a MAIL */
	int			 discard_conn, discard_msg;
	size_t			 nrcpt;		/* accepted by the backend */
	size_t			 nrcpt_tried;
	int			 nerrors;
	int			 ncmds;		/* command lines read */
	int			 pp_checked;	/* first input checked for PROXY */
	int			 pp_reads;
	int			 tls_start;	/* STARTTLS: 220 to send, then TLS */
	int			 tls_then_connect; /* implicit TLS: then connect */
	long long		 pregreet_until; /* util_mono_ms() */
	struct proxy_spool	 sp;		/* PH_DATA: the message */
	int			 sp_open;
	int			 rx_too_big, rx_long_line, rx_spool_err;
	char			 auth_mech[64];	/* PH_AUTH */
	char			 auth_user[256];
	int			 auth_round;
	char			 line[PROXY_TEXT_LINE_MAX + 1];
};

#define SID(s)	((s)->t->id)

/* proxy_session.c: replies, verdicts, the commands */
void	proxy_sess_enter(struct proxy_sess *s, enum proxy_state st);
void	proxy_sess_reply(struct proxy_sess *s, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	proxy_sess_ms(int seconds);
void	proxy_sess_verdict_reply(struct proxy_sess *s, const struct verdict *v);
int	proxy_sess_decide(struct proxy_sess *s,
	    const struct verdict *v, int conn_stage);
void	proxy_sess_reset_msg(struct proxy_sess *s);
void	proxy_sess_connect(struct proxy_sess *s);
void	proxy_sess_banner(struct proxy_sess *s);
void	proxy_helo_done(struct proxy_sess *s, int ehlo);
void	proxy_mail_done(struct proxy_sess *s);
void	proxy_rcpt_done(struct proxy_sess *s);
void	proxy_rset_done(struct proxy_sess *s);

/* proxy_sess_backend.c: the backend connection and its replies */
void	proxy_sess_backend_fail(struct proxy_sess *s,
	    const char *what, const char *err);
int	proxy_sess_settle(struct proxy_sess *s);
int	proxy_sess_cmd(struct proxy_sess *s, const char *line,
	    const char *what);
int	proxy_sess_ask(struct proxy_sess *s, const char *line,
	    const char *what, enum proxy_be_wait bw);
int	proxy_sess_send(struct proxy_sess *s, const char *line,
	    const char *what);
void	proxy_sess_await(struct proxy_sess *s, const char *what,
	    enum proxy_be_wait bw);
void	proxy_sess_relay(struct proxy_sess *s);
int	proxy_sess_backend_rset(struct proxy_sess *s);
int	proxy_sess_xclient(struct proxy_sess *s, const char *proto,
	    const char *helo);
void	proxy_sess_backend_done(struct proxy_sess *s);
int	proxy_sess_open_backend(struct proxy_sess *s);
int	proxy_ph_bereply(struct proxy_sess *s, int timed_out, int *wait_ms);

/* proxy_sess_data.c: DATA, the message and its delivery */
void	proxy_data_done(struct proxy_sess *s);
void	proxy_dot_done(struct proxy_sess *s);
void	proxy_cmd_data(struct proxy_sess *s);
void	proxy_sess_msg_done(struct proxy_sess *s);
int	proxy_ph_data(struct proxy_sess *s, int timed_out);

/* proxy_sess_auth.c: STARTTLS and AUTH */
void	proxy_cmd_starttls(struct proxy_sess *s);
int	proxy_ph_tls(struct proxy_sess *s, int timed_out);
void	proxy_cmd_auth(struct proxy_sess *s, const char *arg);
int	proxy_ph_auth(struct proxy_sess *s, int timed_out);

#endif
