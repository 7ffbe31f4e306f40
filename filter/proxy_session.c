/*
 * proxy_session.c - one client connection of the SMTP proxy: the state
 * machine (enum proxy_state, proxy_sess_enter()), command dispatch
 * through the verb table (proxy_verb.c), check -> engine -> relay in
 * lockstep with the backend (proxy_backend.c), DATA received whole into
 * a spool (proxy_spool.c) and sent on with the engine's header edits
 * (proxy_msg.c).
 *
 * Called by proxy.c on the connection's own thread; the session owns
 * the client socket, the backend connection, the spool and the txn, and
 * frees them all before returning.
 *
 * Lockstep: a command is answered with the backend's own reply (EHLO's
 * capability list filtered to what the proxy handles end to end). The
 * message is sent to the backend only once it has been received and
 * checked, and the client gets the backend's reply to the final dot: a
 * client never sees 250 for a message the backend did not accept. A
 * backend that cannot be reached, times out or breaks the protocol
 * gives the client 421 and ends the session.
 *
 * Safe framing (SMTP smuggling): every line from the client must end
 * with CRLF and hold no bare CR and no NUL. In a command such a line is
 * refused (500 5.5.2); in DATA the message is refused (550 5.5.2) and
 * the connection closed, because the proxy cannot know where the client
 * thinks the message ends. The backend only ever gets lines the proxy
 * rebuilt: commands from parsed parts, the message from the spool (CRLF
 * only, dot-stuffed again).
 *
 * TLS (RFC 3207): STARTTLS is offered when a certificate is configured;
 * bytes the client sent after "STARTTLS" before the handshake are
 * discarded (command injection across the TLS boundary) and the session
 * starts afresh inside TLS: HELO and transaction forgotten, a new EHLO
 * needed. AUTH is offered only inside TLS, relayed to the backend
 * exchange by exchange; its 235 marks the txn authenticated.
 *
 * Client identity: from accept(), or from the PROXY header a trusted
 * upstream sends first; passed to the backend by XCLIENT or a PROXY
 * header (proxy_backend_forward).
 *
 * Zombie triage before the backend is touched: the connect-stage
 * checks, the optional greet pause (PREGREET: talking before the
 * banner), HTTP and proxy verbs. Pipelining after a plain HELO (which
 * does not offer PIPELINING) gets PIPELINING_UNOFFERED and is dropped.
 *
 * Event-driven: the session never waits for its client. Each read of
 * the client is PROXY_IO_NOWAIT; where it would wait, the phase handler
 * returns and proxy_session_step() tells the event loop (proxy.c) what
 * to wait for and for how long (enum proxy_phase says where the session
 * goes on: a command, a line of the message, an AUTH response, the TLS
 * handshake, the greet pause, the PROXY header). Backend exchanges and
 * the engine's checks run on the worker thread that runs the step: they
 * are bounded by their timeouts, and the worker pool grows while they
 * wait (proxy.c), so they hold up no other client's I/O.
 *
 * Thread safety: a session is run by one worker at a time (proxy.c's
 * claim); the engine is thread-safe.
 */
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
	BW_NONE, BW_HELO, BW_EHLO, BW_MAIL, BW_RCPT, BW_RSET, BW_DATA, BW_DOT,
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
	int			 be_ehlo_owed;	/* EHLO sent, its reply not read */
	int			 be_txn;	/* the backend holds a MAIL */
	enum proxy_be_wait	 be_wait;	/* PH_BEREPLY: for what */
	const char		*be_what;	/* its name, for log lines */
	long long		 be_until;	/* util_mono_ms() deadline */
	int			 be_asked;	/* sent; nothing read yet */
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

static void
proxy_sess_enter(struct proxy_sess *s, enum proxy_state st)
{
	if (s->state != st)
		log_debug("%s proxy: %s state %s -> %s", SID(s), s->peer,
		    proxy_state_name(s->state), proxy_state_name(st));
	s->state = st;
}

/* proxy_sess_reply - one reply line ("code text"), queued. */
static void
proxy_sess_reply(struct proxy_sess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
proxy_sess_reply(struct proxy_sess *s, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);	/* our own texts: short */
	va_end(ap);
	for (char *p = tmp; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	(void)proxy_io_printf(&s->cli, "%s\r\n", tmp);
}

static int
proxy_sess_ms(int seconds)
{
	return seconds > 2000000 ? 2000000000 : seconds * 1000;
}

/* proxy_sess_backend_fail - the backend is gone: 421, end the session. */
static void
proxy_sess_backend_fail(struct proxy_sess *s, const char *what, const char *err)
{
	log_warn("%s proxy: %s BACKEND FAILURE %s at %s: %s", SID(s), s->peer,
	    s->be.name, what, err);
	proxy_sess_reply(s, "421 4.4.2 %s Error: backend unavailable, try again"
	    " later", s->cfg->hostname);
	s->be.connected = 0;
	proxy_sess_enter(s, PS_CLOSING);
}

static void proxy_sess_relay(struct proxy_sess *s);

/*
 * proxy_sess_settle - read the reply owed for an EHLO sent without
 * waiting (see proxy_cmd_helo). 0 when it was 250 (or none was owed);
 * -1 when the current command has been answered: 421 after a backend
 * failure, or the backend's refusal of the EHLO, passed on (the client
 * must then say HELO/EHLO again).
 */
static int
proxy_sess_settle(struct proxy_sess *s)
{
	char err[256];

	if (!s->be_ehlo_owed)
		return 0;
	s->be_ehlo_owed = 0;
	if (proxy_backend_read_reply(&s->be, &s->r,
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, "EHLO", err);
		return -1;
	}
	if (s->r.code == 250) {
		proxy_backend_parse_ehlo(&s->be, &s->r);
		return 0;
	}
	log_info("%s proxy: %s backend refused EHLO (%d): passed on to the"
	    " next command", SID(s), s->peer, s->r.code);
	proxy_sess_relay(s);
	s->helo_done = 0;
	if (s->state != PS_CLOSING)
		proxy_sess_enter(s, PS_GREET);
	return -1;
}

/* proxy_sess_cmd - send line to the backend; -1 (after the 421, or
 * another answer to the client's command) when it failed. */
static int
proxy_sess_cmd(struct proxy_sess *s, const char *line, const char *what)
{
	char err[256];

	if (proxy_sess_settle(s) != 0)
		return -1;
	if (proxy_backend_command(&s->be, line, &s->r,
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, what, err);
		return -1;
	}
	return 0;
}

/*
 * proxy_sess_ask - send line to the backend and wait for its reply in
 * PH_BEREPLY, without holding the worker when the backend is plain TCP
 * (the event loop wakes the session when the reply can be read; with TLS
 * to the backend the reply is read at once, waiting). The reply goes on
 * in proxy_ph_bereply, by bw. -1 when the command has been answered
 * already (a backend failure's 421, or a refused EHLO passed on).
 */
static int
proxy_sess_ask(struct proxy_sess *s, const char *line, const char *what,
    enum proxy_be_wait bw)
{
	if (proxy_sess_settle(s) != 0)
		return -1;
	if (!s->be.connected) {
		proxy_sess_backend_fail(s, what, "not connected");
		return -1;
	}
	if (strpbrk(line, "\r\n") != NULL)
		PANIC("proxy_sess_ask: line end in a command");
	if (proxy_io_printf(&s->be.io, "%s\r\n", line) != 0 ||
	    proxy_io_flush(&s->be.io) != 0) {
		proxy_sess_backend_fail(s, what, "write error");
		return -1;
	}
	proxy_backend_reply_begin(&s->r);
	s->be_wait = bw;
	s->be_what = what;
	s->be_until = util_mono_ms() + proxy_sess_ms(bw == BW_DOT ?
	    s->cfg->proxy_backend_data_timeout : s->cfg->proxy_backend_timeout);
	s->be_asked = 1;
	s->phase = PH_BEREPLY;
	return 0;
}

/* proxy_sess_relay - pass the backend's reply on; a 421 ends both. */
static void
proxy_sess_relay(struct proxy_sess *s)
{
	proxy_reply_put(&s->cli, &s->r, NULL);
	if (s->r.code == 421)
		proxy_sess_enter(s, PS_CLOSING);
}

/* proxy_sess_verdict_reply - the reply for a reject/tempfail verdict;
 * the code's class wins over the action, as in milter mode. */
static void
proxy_sess_verdict_reply(struct proxy_sess *s, const struct verdict *v)
{
	char rcode[4], xcode[16], text[901];
	int temp = verdict_reply(v, rcode, xcode, text, sizeof(text));

	proxy_sess_reply(s, "%s %s %s", rcode, xcode, text);
	log_info("%s proxy: %s %s %s %s%s%s", SID(s), s->peer,
	    temp ? "tempfail" : "reject", rcode, xcode,
	    v->symbol[0] ? " by " : "", v->symbol);
}

/*
 * proxy_sess_decide - enforce a verdict before end of message. Returns
 * 1 when the command has been answered (refused), 0 to go on.
 */
static int
proxy_sess_decide(struct proxy_sess *s, const struct verdict *v, int conn_stage)
{
	switch (v->action) {
	case VERDICT_REJECT:
	case VERDICT_TEMPFAIL:
		proxy_sess_verdict_reply(s, v);
		return 1;
	case VERDICT_DISCARD:
		if (conn_stage)
			s->discard_conn = 1;
		else
			s->discard_msg = 1;
		return 0;
	default:
		return 0;
	}
}

/* proxy_sess_reset_msg - forget the message in the engine. */
static void
proxy_sess_reset_msg(struct proxy_sess *s)
{
	if (s->in_msg)
		eng_txn_reset(s->t);
	s->in_msg = 0;
	s->discard_msg = 0;
	s->nrcpt = 0;
	s->nrcpt_tried = 0;
}

/* proxy_sess_backend_rset - end the backend's transaction quietly (the
 * client gets our reply, not this one). -1 when the backend failed. */
static int
proxy_sess_backend_rset(struct proxy_sess *s)
{
	if (proxy_sess_cmd(s, "RSET", "RSET") != 0)
		return -1;
	if (s->r.code / 100 != 2) {
		proxy_sess_backend_fail(s, "RSET", "RSET refused");
		return -1;
	}
	s->be_txn = 0;
	return 0;
}


/* ---- connection set-up ---- */

/* proxy_sess_be_ehlo - our own EHLO to the backend; -1 after the 421. */
static int
proxy_sess_be_ehlo(struct proxy_sess *s, const char *what)
{
	char cmd[300];

	str_fmt(cmd, sizeof(cmd), "EHLO %s", s->cfg->hostname);
	if (proxy_sess_cmd(s, cmd, what) != 0)
		return -1;
	if (s->r.code != 250) {
		proxy_sess_backend_fail(s, what, "EHLO refused");
		return -1;
	}
	proxy_backend_parse_ehlo(&s->be, &s->r);
	return 0;
}

/* proxy_sess_xclient - tell a Postfix backend the real client before the
 * client's own HELO/EHLO is relayed. Fails closed: a backend that does
 * not take XCLIENT would see every client as the proxy itself. */
static int
proxy_sess_xclient(struct proxy_sess *s, const char *proto, const char *helo)
{
	char line[PROXY_CMD_LINE_MAX];
	const char *name = s->t->iprev == CHK_PASS ? s->t->iprev_name : NULL;

	if (!s->be_ehlo) {
		if (proxy_sess_be_ehlo(s, "EHLO (for XCLIENT)") != 0)
			return -1;
		s->be_ehlo = 1;
	}
	if (proxy_backend_xclient_line(&s->be, line, sizeof(line),
	    s->t->client_ip, s->t->client_port, name, proto, helo) != 0) {
		proxy_sess_backend_fail(s, "XCLIENT", "XCLIENT not offered to"
		    " us (Postfix: smtpd_authorized_xclient_hosts)");
		return -1;
	}
	if (proxy_sess_cmd(s, line, "XCLIENT") != 0)
		return -1;
	if (s->r.code != 220) {
		char why[80];

		str_fmt(why, sizeof(why), "XCLIENT answered %d", s->r.code);
		proxy_sess_backend_fail(s, "XCLIENT", why);
		return -1;
	}
	s->xclient_done = 1;
	return 0;
}

/* proxy_sess_backend_starttls - proxy_backend_tls = yes: TLS before
 * anything about the client is said (XCLIENT comes after). Required:
 * no STARTTLS offered or a failed handshake is a backend failure. */
static int
proxy_sess_backend_starttls(struct proxy_sess *s)
{
	char err[256], version[32], cipher[128], peer[300];

	if (proxy_sess_be_ehlo(s, "EHLO (for STARTTLS)") != 0)
		return -1;
	if (!(s->be.caps & PB_CAP_STARTTLS)) {
		proxy_sess_backend_fail(s, "STARTTLS", "backend offers no STARTTLS");
		return -1;
	}
	if (proxy_sess_cmd(s, "STARTTLS", "STARTTLS") != 0)
		return -1;
	if (s->r.code != 220 || proxy_io_pending(&s->be.io) != 0) {
		proxy_sess_backend_fail(s, "STARTTLS", s->r.code != 220 ?
		    "STARTTLS refused" : "data after its 220");
		return -1;
	}
	if (proxy_tls_connect(s->conn->be_tls, &s->be.io, s->cfg,
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, "STARTTLS", err);
		return -1;
	}
	proxy_tls_info(&s->be.io, version, sizeof(version), cipher, sizeof(cipher));
	proxy_tls_peer_status(&s->be.io, peer, sizeof(peer));
	log_info("%s proxy: %s TLS to backend %s: %s %s, %s", SID(s), s->peer,
	    s->be.name, version, cipher, peer);
	if (proxy_sess_be_ehlo(s, "EHLO (after STARTTLS)") != 0)
		return -1;
	s->be_ehlo = 1;
	return 0;
}

/* proxy_sess_reuse_on - backend connections are kept between sessions:
 * only with proxy_backend_forward = none (a PROXY header belongs to one
 * client, and after XCLIENT Postfix treats the connection as that
 * client's: no second XCLIENT unless the client itself is authorized). */
static int
proxy_sess_reuse_on(const struct proxy_sess *s)
{
	return s->conn->bepool != NULL && proxy_bepool_keeps(s->conn->bepool) &&
	    s->cfg->proxy_backend_forward == CFG_FORWARD_NONE;
}

/* proxy_sess_reusable - the backend connection may serve the next
 * client: nothing of this one's sticks to it (no AUTH) and it is idle. */
static int
proxy_sess_reusable(const struct proxy_sess *s)
{
	return proxy_sess_reuse_on(s) && s->be.connected && !s->auth_tried &&
	    proxy_io_pending(&s->be.io) == 0 && s->be.io.out.len == 0;
}

/* proxy_sess_backend_done - at the end of the session: keep the backend
 * connection for the next client when it may be reused, else QUIT. An
 * EHLO reply still owed must be 250, and a transaction still open on
 * the backend must be ended by an RSET answered 250; a connection with
 * neither goes back as it is (one round trip less per session). */
static void
proxy_sess_backend_done(struct proxy_sess *s)
{
	int ok = 1;

	if (s->be_ehlo_owed && s->be.connected) {
		s->be_ehlo_owed = 0;
		ok = proxy_backend_read_reply(&s->be, &s->r, 5000, s->line,
		    sizeof(s->line)) == 0 && s->r.code == 250;
	}
	if (ok && s->be_txn && proxy_sess_reusable(s))
		ok = proxy_backend_command(&s->be, "RSET", &s->r, 5000, s->line,
		    sizeof(s->line)) == 0 && s->r.code == 250;
	if (ok && proxy_sess_reusable(s)) {
		proxy_bepool_give(s->conn->bepool, &s->be);
		return;
	}
	proxy_backend_close(&s->be);
}

static int proxy_sess_connect_backend(struct proxy_sess *s);

/* proxy_sess_open_backend - a kept connection (proxy_backend_reuse), or
 * connect and read the greeting (unless the backend is taken as down
 * after timeouts: proxy_bepool_is_down), then STARTTLS when configured;
 * 421 to the client when that fails. */
static int
proxy_sess_open_backend(struct proxy_sess *s)
{
	char err[256];
	long long t0, down;
	int rc;

	if (proxy_sess_reuse_on(s) &&
	    proxy_bepool_take(s->conn->bepool, s->cfg->proxy_backend, &s->be)) {
		log_debug("%s proxy: %s backend connection reused", SID(s),
		    s->peer);
		s->be_ehlo = 1;	/* its capabilities are known */
		s->be_reused = 1;
		return 0;
	}
	if (s->conn->bepool != NULL && (down = proxy_bepool_is_down(
	    s->conn->bepool, s->cfg->proxy_backend)) > 0) {
		str_fmt(err, sizeof(err), "taken as down for %lld s more after"
		    " %d timeouts in a row", (down + 999) / 1000,
		    PROXY_BEPOOL_SLOW_FAILS);
		proxy_sess_backend_fail(s, "connect", err);
		return -1;
	}
	t0 = util_mono_ms();
	rc = proxy_sess_connect_backend(s);
	if (s->conn->bepool != NULL)
		proxy_bepool_opened(s->conn->bepool, s->cfg->proxy_backend,
		    rc == 0, util_mono_ms() - t0);
	if (rc != 0 || s->conn->be_tls == NULL)
		return rc;
	return proxy_sess_backend_starttls(s);
}

/* proxy_sess_connect_backend - connect, the PROXY header, the greeting;
 * 421 to the client when that fails. */
static int
proxy_sess_connect_backend(struct proxy_sess *s)
{
	char err[256];

	if (proxy_backend_connect(&s->be, s->cfg->proxy_backend,
	    proxy_sess_ms(s->cfg->proxy_backend_connect_timeout),
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, "connect", err);
		return -1;
	}
	if (s->cfg->proxy_backend_forward == CFG_FORWARD_PROXY_V1 ||
	    s->cfg->proxy_backend_forward == CFG_FORWARD_PROXY_V2) {
		unsigned char hdr[128];
		size_t len;

		/* Queued now, sent by the flush before the greeting read. */
		if (proxy_pp_build(s->cfg->proxy_backend_forward ==
		    CFG_FORWARD_PROXY_V1 ? 1 : 2, s->t->client_ip,
		    s->t->client_port, s->dst_ip, s->dst_port, hdr, sizeof(hdr),
		    &len) != 0 || proxy_io_put(&s->be.io, hdr, len) != 0) {
			proxy_sess_backend_fail(s, "PROXY header", "cannot build"
			    " or send it (address families differ?)");
			return -1;
		}
	}
	if (proxy_backend_read_reply(&s->be, &s->r,
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, "greeting", err);
		return -1;
	}
	if (s->r.code != 220) {
		str_fmt(err, sizeof(err), "greeting %d", s->r.code);
		proxy_sess_backend_fail(s, "greeting", err);
		return -1;
	}
	return 0;
}

/* proxy_sess_greet - the connection checks passed: only now the
 * backend, then the banner. */
static void
proxy_sess_greet(struct proxy_sess *s)
{
	if (proxy_sess_open_backend(s) != 0)
		return;
	proxy_sess_reply(s, "220 %s ESMTP", s->cfg->hostname);
	proxy_sess_enter(s, PS_GREET);
	s->phase = PH_CMD;
}

/* proxy_sess_connect - the engine's connect stage, then the greet pause
 * or at once the backend and the banner. */
static void
proxy_sess_connect(struct proxy_sess *s)
{
	struct verdict v;

	eng_event(s->t, TXN_EV_CONNECT, &v);
	if (v.action == VERDICT_TEMPFAIL || (v.action == VERDICT_REJECT &&
	    v.rcode[0] == '4')) {
		proxy_sess_verdict_reply(s, &v);
		proxy_sess_enter(s, PS_CLOSING);
		return;
	}
	if (v.action == VERDICT_REJECT) {
		/* RFC 5321 §3.1: a 554 greeting, then only QUIT. */
		proxy_sess_reply(s, "554 5.7.1 %s %.400s", s->cfg->hostname,
		    v.text[0] ? v.text : "Connection refused by policy");
		log_info("%s proxy: %s reject at connect%s%s", SID(s), s->peer,
		    v.symbol[0] ? " by " : "", v.symbol);
		proxy_sess_enter(s, PS_REJECTED);
		s->phase = PH_CMD;
		return;
	}
	if (v.action == VERDICT_DISCARD)
		s->discard_conn = 1;
	if (s->cfg->proxy_greet_pause_ms > 0) {
		s->pregreet_until = util_mono_ms() + s->cfg->proxy_greet_pause_ms;
		s->phase = PH_PREGREET;
		return;
	}
	proxy_sess_greet(s);
}

/*
 * proxy_ph_pregreet - the greet pause (postscreen's pregreet test): a
 * real MTA waits for the banner, a zombie often talks at once. Input
 * (or a close) before the pause ends: 554, closing. 0 to wait (*wait_ms
 * set), 1 to go on.
 */
static int
proxy_ph_pregreet(struct proxy_sess *s, int timed_out, int *wait_ms)
{
	long long left = s->pregreet_until - util_mono_ms();
	int r = proxy_io_has_input(&s->cli) ? 1 :
	    proxy_io_read_more(&s->cli, PROXY_IO_NOWAIT);

	if (r == -2) {
		if (!timed_out && left > 0) {
			*wait_ms = (int)left;
			return 0;
		}
		proxy_sess_greet(s);
		return 1;
	}
	txn_symbol(s->t, "PREGREET", NULL);
	log_warn("%s proxy: %s PREGREET: talked before the banner%s", SID(s),
	    s->peer, r <= 0 ? " (or left)" : "");
	proxy_sess_reply(s, "554 5.3.0 %s Error: protocol error, talked before"
	    " the banner", s->cfg->hostname);
	proxy_sess_enter(s, PS_CLOSING);
	return 1;
}

/* ---- commands ---- */

static int
proxy_helo_arg_ok(const char *a)
{
	if (*a == '\0')
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a <= 0x20 || *a == 0x7f)
			return 0;
	return 1;
}

/* proxy_sess_ehlo_reply - our EHLO reply: the backend's capabilities
 * filtered to those the proxy handles end to end. */
static void
proxy_sess_ehlo_reply(struct proxy_sess *s)
{
	unsigned long long size = (unsigned long long)s->cfg->message_size_limit;
	unsigned caps = s->be.caps;

	if ((caps & PB_CAP_SIZE) && s->be.size > 0 && s->be.size < size)
		size = s->be.size;
	proxy_sess_reply(s, "250-%s", s->cfg->hostname);
	proxy_sess_reply(s, "250-PIPELINING");
	proxy_sess_reply(s, "250-SIZE %llu", size);
	if (caps & PB_CAP_8BITMIME)
		proxy_sess_reply(s, "250-8BITMIME");
	if (caps & PB_CAP_SMTPUTF8)
		proxy_sess_reply(s, "250-SMTPUTF8");
	if (caps & PB_CAP_ENHANCED)
		proxy_sess_reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->conn->tls != NULL && !s->tls_on)
		proxy_sess_reply(s, "250-STARTTLS");
	/* RFC 4954 §4: no plaintext passwords; AUTH only inside TLS. */
	if (s->tls_on && (caps & PB_CAP_AUTH) && !s->auth_done)
		proxy_sess_reply(s, "250-AUTH %s", s->be.auth);
	proxy_sess_reply(s, "250 HELP");
}

static void
proxy_cmd_helo(struct proxy_sess *s, const char *arg, int ehlo)
{
	struct verdict v;
	char cmd[PROXY_CMD_LINE_MAX];

	if (!proxy_helo_arg_ok(arg)) {
		proxy_sess_reply(s, "501 5.5.4 Syntax: %s hostname",
		    ehlo ? "EHLO" : "HELO");
		return;
	}
	proxy_sess_reset_msg(s);
	txn_set_helo(s->t, arg);
	eng_event(s->t, TXN_EV_HELO, &v);
	if (proxy_sess_decide(s, &v, 1))
		return;
	if (s->cfg->proxy_backend_forward == CFG_FORWARD_XCLIENT &&
	    !s->xclient_done &&
	    proxy_sess_xclient(s, ehlo ? "ESMTP" : "SMTP", arg) != 0)
		return;
	str_fmt(cmd, sizeof(cmd), "%s %s", ehlo ? "EHLO" : "HELO", arg);
	if (ehlo && s->be_reused) {
		/* A kept connection's capabilities are known: answer now and
		 * read the backend's reply before the next command goes to
		 * it (proxy_sess_settle), one round trip less per session.
		 * A refusal is passed on then. */
		if (proxy_sess_settle(s) != 0)
			return;
		if (proxy_io_printf(&s->be.io, "%s\r\n", cmd) != 0 ||
		    proxy_io_flush(&s->be.io) != 0) {
			proxy_sess_backend_fail(s, "EHLO", "write error");
			return;
		}
		s->be_ehlo_owed = 1;
		s->be_txn = 0;
		proxy_sess_ehlo_reply(s);
		s->helo_plain = 0;
		s->helo_done = 1;
		proxy_sess_enter(s, PS_READY);
		return;
	}
	(void)proxy_sess_ask(s, cmd, ehlo ? "EHLO" : "HELO",
	    ehlo ? BW_EHLO : BW_HELO);
}

/* proxy_helo_done - the backend's reply to the client's HELO/EHLO. */
static void
proxy_helo_done(struct proxy_sess *s, int ehlo)
{
	if (s->r.code != 250) {
		proxy_sess_relay(s);
		return;
	}
	s->be_txn = 0;
	if (ehlo) {
		proxy_backend_parse_ehlo(&s->be, &s->r);
		proxy_sess_ehlo_reply(s);
	} else {
		proxy_sess_reply(s, "250 %s", s->cfg->hostname);
	}
	s->helo_plain = !ehlo;
	s->helo_done = 1;
	proxy_sess_enter(s, PS_READY);
}

static void
proxy_cmd_mail(struct proxy_sess *s, const char *arg)
{
	char addr[PROXY_PATH_MAX + 1], why[200], params[300];
	char cmd[PROXY_CMD_LINE_MAX + 64];
	const char *p;
	unsigned long long size;
	struct verdict v;

	if (proxy_parse_path(arg, "FROM:", addr, sizeof(addr), &p, why,
	    sizeof(why)) != 0) {
		proxy_sess_reply(s, "501 5.5.4 %s", why);
		return;
	}
	if (proxy_mail_params(p, &size, params, sizeof(params), why,
	    sizeof(why)) != 0) {
		proxy_sess_reply(s, "%s", why);
		return;
	}
	if (size > (unsigned long long)s->cfg->message_size_limit) {
		proxy_sess_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	proxy_sess_reset_msg(s);
	s->in_msg = 1;
	txn_set_mail(s->t, addr);
	eng_event(s->t, TXN_EV_MAIL, &v);
	if (proxy_sess_decide(s, &v, 0))
		return;
	str_fmt(cmd, sizeof(cmd), "MAIL FROM:<%s>%s", addr, params);
	(void)proxy_sess_ask(s, cmd, "MAIL", BW_MAIL);
}

/* proxy_mail_done - the backend's reply to MAIL, passed on. */
static void
proxy_mail_done(struct proxy_sess *s)
{
	proxy_sess_relay(s);
	if (s->r.code / 100 == 2) {
		s->be_txn = 1;
		proxy_sess_enter(s, PS_MAIL);
	}
}

/* proxy_rcpt_unknown - a backend's RCPT reply that means "no such
 * recipient" (RFC 5321 550, 551, 553), counted for harvest control; 554
 * (policy, relay denied) and other 5xx are not. */
static int
proxy_rcpt_unknown(int code)
{
	return code == 550 || code == 551 || code == 553;
}

static void
proxy_cmd_rcpt(struct proxy_sess *s, const char *arg)
{
	char addr[PROXY_PATH_MAX + 1], why[200], cmd[PROXY_CMD_LINE_MAX + 16];
	const char *p;
	struct verdict v;

	if (s->nrcpt_tried >= (size_t)s->cfg->proxy_max_recipients) {
		proxy_sess_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (proxy_parse_path(arg, "TO:", addr, sizeof(addr), &p, why,
	    sizeof(why)) != 0) {
		proxy_sess_reply(s, "501 5.5.4 %s", why);
		return;
	}
	if (*p != '\0') {
		proxy_sess_reply(s, "555 5.5.4 Unsupported option: %.40s", p);
		return;
	}
	if (addr[0] == '\0') {
		proxy_sess_reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	s->nrcpt_tried++;
	txn_add_rcpt(s->t, addr);
	eng_event(s->t, TXN_EV_RCPT, &v);
	if (proxy_sess_decide(s, &v, 0))
		return;
	str_fmt(cmd, sizeof(cmd), "RCPT TO:<%s>", addr);
	str_copy(s->be_addr, addr, sizeof(s->be_addr));
	(void)proxy_sess_ask(s, cmd, "RCPT", BW_RCPT);
}

/* proxy_rcpt_done - the backend's reply to RCPT (for s->be_addr). */
static void
proxy_rcpt_done(struct proxy_sess *s)
{
	struct verdict v;

	if (proxy_rcpt_unknown(s->r.code)) {
		/* Harvest control: the backend does not know this recipient;
		 * past the threshold the verdict (421) replaces its answer. */
		state_drop_last_rcpt(s->t);
		if (eng_bad_rcpt(s->t, s->be_addr, &v) != VERDICT_CONTINUE &&
		    proxy_sess_decide(s, &v, 0)) {
			if (strcmp(v.rcode, "421") == 0)
				proxy_sess_enter(s, PS_CLOSING);
			return;
		}
	}
	proxy_sess_relay(s);
	if (s->r.code / 100 == 2) {
		s->nrcpt++;
		proxy_sess_enter(s, PS_RCPT);
	}
}

/* ---- DATA ---- */

/*
 * proxy_sess_data_line - one line of the message (read with status st,
 * len octets in s->line) into the spool, without its dot-stuffing.
 * Over-long lines and too much data are read to the end and reported; a
 * framing error (bare CR/LF, NUL) stops at once. Returns RX_MORE, or how
 * the message ended.
 */
static enum proxy_rx
proxy_sess_data_line(struct proxy_sess *s, enum proxy_line_status st,
    size_t len)
{
	size_t limit = (size_t)s->cfg->message_size_limit;
	const char *p = s->line;
	char err[256];

	if (st == PL_BARE_LF && s->bare_lf_ok)
		st = PL_OK;	/* repaired: the spool gets CRLF */
	switch (st) {
	case PL_OK:
		break;
	case PL_TOO_LONG:
		s->rx_long_line = 1;
		return RX_MORE;
	case PL_BARE_LF:
	case PL_BARE_CR:
	case PL_NUL:
		log_warn("%s proxy: %s %s IN DATA: message refused, closing",
		    SID(s), s->peer, st == PL_BARE_LF ? "BARE LF" :
		    st == PL_BARE_CR ? "BARE CR" : "NUL");
		txn_symbol(s->t, "SMTP_BAD_FRAMING", proxy_line_status_name(st));
		return RX_FRAMING;
	default:
		return RX_GONE;
	}
	if (len == 1 && p[0] == '.') {
		if (s->rx_spool_err || proxy_spool_finish(&s->sp, err,
		    sizeof(err)) != 0)
			return RX_SPOOL_ERR;
		return s->rx_too_big ? RX_TOO_BIG : s->rx_long_line ?
		    RX_LONG_LINE : RX_OK;
	}
	if (p[0] == '.') {
		p++;
		len--;
	}
	if (s->rx_too_big || s->rx_long_line || s->rx_spool_err)
		return RX_MORE;
	if (s->sp.len + len + 2 > limit) {
		s->rx_too_big = 1;
		return RX_MORE;
	}
	if (proxy_spool_append(&s->sp, p, len, err, sizeof(err)) != 0 ||
	    proxy_spool_append(&s->sp, "\r\n", 2, err, sizeof(err)) != 0) {
		log_err("%s proxy: %s", SID(s), err);
		s->rx_spool_err = 1;
	}
	return RX_MORE;
}

/*
 * proxy_sess_deliver - send the checked message to the backend and pass
 * its final reply on. On any backend failure the client gets 421: the
 * message is not accepted, the client keeps it and retries.
 */
static void
proxy_sess_deliver(struct proxy_sess *s)
{
	(void)proxy_sess_ask(s, "DATA", "DATA", BW_DATA);
}

/* proxy_data_done - the backend's reply to DATA: on 354 the message
 * follows, and its final reply is waited for (BW_DOT). */
static void
proxy_data_done(struct proxy_sess *s)
{
	if (s->r.code != 354) {
		if (s->r.code / 100 != 4 && s->r.code / 100 != 5) {
			proxy_sess_backend_fail(s, "DATA", "unexpected reply");
			return;
		}
		proxy_sess_relay(s);
		/* A refused DATA leaves the backend's transaction open
		 * (Postfix keeps MAIL and RCPT); ours is over. */
		if (s->state != PS_CLOSING)
			(void)proxy_sess_backend_rset(s);
		return;
	}
	if (proxy_msg_write(&s->msg, s->t, &s->sp, &s->be.io) != 0 ||
	    proxy_io_flush(&s->be.io) != 0) {
		proxy_sess_backend_fail(s, "message", "write error");
		return;
	}
	proxy_backend_reply_begin(&s->r);
	s->be_wait = BW_DOT;
	s->be_what = "end of data";
	s->be_until = util_mono_ms() +
	    proxy_sess_ms(s->cfg->proxy_backend_data_timeout);
	s->be_asked = 1;
	s->phase = PH_BEREPLY;
}

/* proxy_dot_done - the backend's final reply to the message. */
static void
proxy_dot_done(struct proxy_sess *s)
{
	s->be_txn = 0;	/* any final reply ends the transaction */
	log_info("%s proxy: %s message of %zu bytes for %zu recipient(s):"
	    " backend %d", SID(s), s->peer, s->sp.len, s->nrcpt, s->r.code);
	proxy_sess_relay(s);
}

/* proxy_sess_quarantine_mark - delete every copy of the quarantine
 * field the client sent; add ours when the verdict is quarantine. */
static void
proxy_sess_quarantine_mark(struct proxy_sess *s, const struct proxy_msg *m,
    int quarantine)
{
	const char *h = s->cfg->proxy_quarantine_header;
	int seen = 0;

	if (h[0] == '\0')
		return;
	for (size_t i = 0; i < m->nf; i++)
		if (strcasecmp(m->f[i].name, h) == 0)
			seen++;
	/* Highest occurrence first: each index stays valid. */
	for (; seen > 0; seen--)
		txn_hdrop(s->t, TXN_HDR_DELETE, h, NULL, seen);
	if (quarantine) {
		txn_hdrop(s->t, TXN_HDR_ADD, h, "yes", 0);
		log_info("%s proxy: %s quarantine: delivered with %s: yes for the"
		    " backend to hold", SID(s), s->peer, h);
	}
}

/* proxy_sess_eom - checks at end of data, then deliver or refuse. */
static void
proxy_sess_eom(struct proxy_sess *s)
{
	struct proxy_msg *m = &s->msg;
	struct proxy_spool *sp = &s->sp;
	struct verdict v;
	char why[200];

	s->msg_open = 1;	/* freed by proxy_sess_msg_done */
	if (proxy_msg_parse(m, sp, (size_t)s->cfg->max_header_bytes, why,
	    sizeof(why)) != 0) {
		proxy_sess_reply(s, "%s", why);
		(void)proxy_sess_backend_rset(s);
		return;
	}
	proxy_msg_eval(m, s->t, sp, &v);
	if (v.action == VERDICT_REJECT || v.action == VERDICT_TEMPFAIL) {
		proxy_sess_verdict_reply(s, &v);
		(void)proxy_sess_backend_rset(s);
	} else if (v.action == VERDICT_DISCARD || s->discard_msg ||
	    s->discard_conn) {
		log_info("%s proxy: %s message discarded by policy", SID(s),
		    s->peer);
		if (proxy_sess_backend_rset(s) == 0)
			proxy_sess_reply(s, "250 2.0.0 Ok: discarded");
	} else {
		/* Quarantine: the proxy queues nothing, so the backend holds
		 * the message on a header field of ours (Postfix:
		 * header_checks HOLD). Copies the client sent are removed. */
		proxy_sess_quarantine_mark(s, m, v.action == VERDICT_QUARANTINE);
		proxy_sess_deliver(s);
	}
}

static void
proxy_cmd_data(struct proxy_sess *s)
{
	struct verdict v;

	eng_event(s->t, TXN_EV_DATA, &v);
	if (proxy_sess_decide(s, &v, 0))
		return;
	proxy_sess_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	proxy_sess_enter(s, PS_DATA);
	proxy_spool_init(&s->sp, (size_t)s->cfg->proxy_spool_memory,
	    s->cfg->proxy_spool_dir);
	s->sp_open = 1;
	s->rx_too_big = s->rx_long_line = s->rx_spool_err = 0;
	s->phase = PH_DATA;
}

/* proxy_sess_msg_done - the message is over (delivered, refused or
 * failed): free it, back to commands. */
static void
proxy_sess_msg_done(struct proxy_sess *s)
{
	if (s->msg_open) {
		proxy_msg_free(&s->msg);
		s->msg_open = 0;
	}
	if (s->sp_open) {
		proxy_spool_free(&s->sp);
		s->sp_open = 0;
	}
	proxy_sess_reset_msg(s);
	if (s->state == PS_DATA)
		proxy_sess_enter(s, PS_READY);
	s->phase = PH_CMD;
}

/* proxy_sess_data_end - the message ended as rx: check and deliver it,
 * or say why not; back to commands. */
static void
proxy_sess_data_end(struct proxy_sess *s, enum proxy_rx rx)
{
	switch (rx) {
	case RX_MORE:
		PANIC("proxy_sess_data_end: message not ended");
	case RX_OK:
		proxy_sess_eom(s);
		if (s->phase == PH_BEREPLY)
			return;	/* proxy_sess_msg_done when delivered */
		break;
	case RX_TOO_BIG:
		proxy_sess_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		(void)proxy_sess_backend_rset(s);
		break;
	case RX_LONG_LINE:
		proxy_sess_reply(s, "552 5.6.0 Message has a line longer than"
		    " %d characters", PROXY_TEXT_LINE_MAX - 2);
		(void)proxy_sess_backend_rset(s);
		break;
	case RX_SPOOL_ERR:
		proxy_sess_reply(s, "451 4.3.0 Error: cannot store the message,"
		    " try again later");
		(void)proxy_sess_backend_rset(s);
		break;
	case RX_FRAMING:
		proxy_sess_reply(s, "550 5.5.2 Error: bare CR, bare LF or NUL in"
		    " message data; closing");
		proxy_sess_enter(s, PS_CLOSING);
		break;
	case RX_TIMEOUT:
		proxy_sess_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->cfg->hostname);
		proxy_sess_enter(s, PS_CLOSING);
		break;
	case RX_GONE:
		log_info("%s proxy: %s lost connection in DATA: nothing"
		    " delivered", SID(s), s->peer);
		proxy_sess_enter(s, PS_CLOSING);
		break;
	}
	proxy_sess_msg_done(s);
}

/* proxy_ph_data - lines of the message as they come. */
static int
proxy_ph_data(struct proxy_sess *s, int timed_out)
{
	enum proxy_line_status st;
	enum proxy_rx rx;
	size_t len;

	if (timed_out) {
		proxy_sess_data_end(s, RX_TIMEOUT);
		return 1;
	}
	st = proxy_io_read_line(&s->cli, s->line, sizeof(s->line),
	    PROXY_TEXT_LINE_MAX - 2, &len, PROXY_IO_NOWAIT);
	if (st == PL_AGAIN)
		return 0;
	if ((rx = proxy_sess_data_line(s, st, len)) != RX_MORE)
		proxy_sess_data_end(s, rx);
	return 1;
}

/* ---- TLS and AUTH ---- */

/* proxy_sess_tls_up - the handshake done: tell the engine, log. */
static void
proxy_sess_tls_up(struct proxy_sess *s)
{
	char version[32], cipher[128];

	s->tls_on = 1;
	proxy_tls_info(&s->cli, version, sizeof(version), cipher, sizeof(cipher));
	txn_set_tls(s->t, version, cipher);
	log_info("%s proxy: %s TLS established: %s %s", SID(s), s->peer,
	    version, cipher);
}

static void
proxy_cmd_starttls(struct proxy_sess *s)
{
	size_t dropped;

	if (s->conn->tls == NULL) {
		proxy_sess_reply(s, "502 5.5.1 Error: command not supported");
		return;
	}
	if (s->tls_on) {
		proxy_sess_reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	/* RFC 3207 §4.2 and CVE-2011-0411: whatever came after STARTTLS
	 * in plaintext must not be taken as commands inside TLS. */
	if ((dropped = proxy_io_discard_input(&s->cli)) > 0) {
		log_warn("%s proxy: %s STARTTLS PIPELINING: %zu plaintext bytes"
		    " after STARTTLS discarded", SID(s), s->peer, dropped);
		txn_symbol(s->t, "STARTTLS_INJECTION", NULL);
	}
	proxy_sess_reply(s, "220 2.0.0 Ready to start TLS");
	s->tls_start = 1;
	s->phase = PH_TLS;
}

/*
 * proxy_ph_tls - the server handshake, step by step: first the 220 of
 * STARTTLS out in plaintext, then OpenSSL's rounds. Done: implicit TLS
 * goes on to the connect stage; STARTTLS starts the session afresh
 * (RFC 3207 §4.2: discard all knowledge from the client).
 */
static int
proxy_ph_tls(struct proxy_sess *s, int timed_out)
{
	char err[256] = "timeout";
	int r = -1;

	if (!timed_out && s->tls_start) {
		if ((r = proxy_io_flush_some(&s->cli)) == 1)
			return 0;
		if (r == 0 && proxy_tls_accept_start(s->conn->tls, &s->cli, err,
		    sizeof(err)) == 0)
			s->tls_start = 0;
		else
			str_copy(err, "write error or no TLS", sizeof(err));
	}
	if (!timed_out && !s->tls_start &&
	    (r = proxy_tls_accept_step(&s->cli, err, sizeof(err))) == 0)
		return 0;
	if (timed_out || r < 0) {
		log_info("%s proxy: %s %s failed: %s", SID(s), s->peer,
		    s->tls_then_connect ? "TLS handshake" : "STARTTLS", err);
		s->phase = PH_DONE;
		return 1;
	}
	proxy_sess_tls_up(s);
	if (s->tls_then_connect) {
		s->tls_then_connect = 0;
		proxy_sess_connect(s);
		return 1;
	}
	proxy_sess_reset_msg(s);
	txn_set_helo(s->t, NULL);
	s->helo_done = 0;
	s->helo_plain = 0;
	proxy_sess_enter(s, PS_GREET);
	s->phase = PH_CMD;
	return 1;
}

/* proxy_b64_decode - base64 text to bytes (NUL-terminated); -1 bad. */
static int
proxy_b64_decode(const char *in, char *out, size_t outlen, size_t *n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	unsigned acc = 0;
	int bits = 0;

	*n = 0;
	for (; *in != '\0' && *in != '='; in++) {
		const char *c = strchr(tab, *in);

		if (c == NULL || *in == '\0')
			return -1;
		acc = acc << 6 | (unsigned)(c - tab);
		if ((bits += 6) >= 8) {
			bits -= 8;
			if (*n + 1 >= outlen)
				return -1;
			out[(*n)++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[*n] = '\0';
	return 0;
}

/* proxy_auth_user - the user name for the log and the engine from the
 * first client response: PLAIN's authcid ("authzid\0authcid\0pass"),
 * LOGIN's first answer. "" when it cannot be told. */
static void
proxy_auth_user(const char *mech, const char *resp, char *user, size_t ulen)
{
	char raw[600];
	size_t n;
	const char *u = NULL;

	user[0] = '\0';
	if (resp == NULL || proxy_b64_decode(resp, raw, sizeof(raw), &n) != 0)
		return;
	if (strcasecmp(mech, "PLAIN") == 0) {
		const char *nul = memchr(raw, '\0', n);

		if (nul != NULL && (size_t)(nul - raw) + 1 < n)
			u = nul + 1;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		u = raw;
	}
	if (u == NULL)
		return;
	str_copy(user, u, ulen);
	for (char *q = user; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			*q = '?';
}

/*
 * proxy_sess_auth_next - the backend's reply to AUTH or to a response:
 * a 334 challenge goes to the client (PH_AUTH waits for its answer); a
 * final reply ends the exchange, and a 235 marks the txn authenticated.
 */
static void
proxy_sess_auth_next(struct proxy_sess *s)
{
	const char *user = s->auth_user[0] ? s->auth_user : "unknown";

	if (s->r.code == 334) {
		if (s->auth_round++ == PROXY_AUTH_ROUNDS) {
			proxy_sess_backend_fail(s, "AUTH", "too many challenges");
			return;
		}
		proxy_sess_relay(s);
		s->phase = PH_AUTH;
		return;
	}
	s->phase = PH_CMD;
	if (s->r.code == 235) {
		s->auth_done = 1;
		txn_set_auth(s->t, user);
		log_info("%s proxy: %s AUTH %s user=%s: backend 235", SID(s),
		    s->peer, s->auth_mech, user);
	} else {
		log_info("%s proxy: %s AUTH %s user=%s failed: backend %d",
		    SID(s), s->peer, s->auth_mech, user, s->r.code);
	}
	proxy_sess_relay(s);
}

/*
 * proxy_cmd_auth - relay a SASL exchange to the backend: each 334
 * challenge to the client, each client response to the backend, until
 * the backend's final reply, which the client gets. The proxy never
 * decides on credentials; it only learns from a 235 that the session is
 * authenticated.
 */
static void
proxy_cmd_auth(struct proxy_sess *s, const char *arg)
{
	char cmd[PROXY_CMD_LINE_MAX + 8];
	size_t ml = strcspn(arg, " ");

	if (!s->tls_on) {
		proxy_sess_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (s->auth_done) {
		proxy_sess_reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (!(s->be.caps & PB_CAP_AUTH) || ml >= sizeof(s->auth_mech)) {
		proxy_sess_reply(s, "502 5.5.1 Error: authentication not enabled");
		return;
	}
	memcpy(s->auth_mech, arg, ml);
	s->auth_mech[ml] = '\0';
	s->auth_user[0] = '\0';
	s->auth_round = 0;
	if (arg[ml] == ' ')	/* an initial response */
		proxy_auth_user(s->auth_mech, arg + ml + 1, s->auth_user,
		    sizeof(s->auth_user));
	str_fmt(cmd, sizeof(cmd), "AUTH %s", arg);
	s->auth_tried = 1;
	if (proxy_sess_cmd(s, cmd, "AUTH") != 0)
		return;
	proxy_sess_auth_next(s);
}

/* proxy_ph_auth - the client's answer to a 334 challenge. */
static int
proxy_ph_auth(struct proxy_sess *s, int timed_out)
{
	enum proxy_line_status st = PL_TIMEOUT;
	size_t len;

	if (!timed_out && (st = proxy_io_read_line(&s->cli, s->line,
	    sizeof(s->line), PROXY_TEXT_LINE_MAX - 2, &len,
	    PROXY_IO_NOWAIT)) == PL_AGAIN)
		return 0;
	if (st != PL_OK) {
		/* Cancel the exchange; the session ends or the client is
		 * told its line was bad. */
		s->phase = PH_CMD;
		if (proxy_sess_cmd(s, "*", "AUTH cancel") != 0)
			return 1;
		if (st == PL_EOF || st == PL_TIMEOUT || st == PL_ERROR)
			proxy_sess_enter(s, PS_CLOSING);
		else
			proxy_sess_reply(s, "501 5.5.2 Error: bad AUTH response"
			    " line");
		return 1;
	}
	if (s->auth_user[0] == '\0')
		proxy_auth_user(s->auth_mech, s->line, s->auth_user,
		    sizeof(s->auth_user));
	if (proxy_sess_cmd(s, s->line, "AUTH response") == 0)
		proxy_sess_auth_next(s);
	return 1;
}

/* ---- the rest ---- */

static void
proxy_cmd_rset(struct proxy_sess *s)
{
	proxy_sess_reset_msg(s);
	(void)proxy_sess_ask(s, "RSET", "RSET", BW_RSET);
}

/* proxy_rset_done - the backend's reply to the client's RSET. */
static void
proxy_rset_done(struct proxy_sess *s)
{
	proxy_sess_relay(s);
	if (s->r.code / 100 == 2)
		s->be_txn = 0;
	if (s->r.code / 100 == 2 && s->state != PS_CLOSING)
		proxy_sess_enter(s, s->helo_done ? PS_READY : PS_GREET);
}

/*
 * proxy_sess_linger - just after a command went to the backend: while
 * other workers are idle, holding this one up to PROXY_BE_LINGER_MS
 * costs nothing, and a reply that comes meanwhile (the common case) is
 * read without a thread switch. 1 when there is something to read.
 */
static int
proxy_sess_linger(struct proxy_sess *s, long long now)
{
	struct pollfd pf = { .fd = s->be.io.fd, .events = POLLIN };
	long long left = s->be_until - now;

	if (proxy_io_pending(&s->be.io) != 0)
		return 1;
	if (s->conn->idle_workers == NULL ||
	    atomic_load(s->conn->idle_workers) == 0)
		return 0;
	return poll(&pf, 1, left < PROXY_BE_LINGER_MS ? (int)left :
	    PROXY_BE_LINGER_MS) > 0;
}

/*
 * proxy_ph_bereply - the backend's reply to what proxy_sess_ask sent:
 * read what is there (with TLS to the backend: wait for all of it), and
 * when it is complete go on with the command. 0 to wait (*wait_ms set),
 * 1 to go on.
 */
static int
proxy_ph_bereply(struct proxy_sess *s, int timed_out, int *wait_ms)
{
	enum proxy_be_wait bw = s->be_wait;
	long long now = util_mono_ms();
	int plain = s->conn->be_tls == NULL, rc;
	char err[256];

	if (s->be_asked && plain && !timed_out && now < s->be_until &&
	    !proxy_sess_linger(s, now)) {
		rc = 0;		/* not there yet: the event loop waits */
	} else {
		now = util_mono_ms();
		rc = proxy_backend_reply_more(&s->be, &s->r, plain ?
		    PROXY_IO_NOWAIT : (int)(s->be_until > now ?
		    s->be_until - now : 1), err, sizeof(err));
		if (rc == 0 && now >= s->be_until) {
			str_fmt(err, sizeof(err), "timeout while reading a reply");
			rc = -1;
		}
	}
	s->be_asked = 0;
	if (rc == 0) {
		*wait_ms = (int)(s->be_until > now ? s->be_until - now : 1);
		return 0;
	}
	s->be_wait = BW_NONE;
	s->phase = PH_CMD;
	if (rc < 0) {
		proxy_sess_backend_fail(s, s->be_what, err);
		if (bw == BW_DATA || bw == BW_DOT)
			proxy_sess_msg_done(s);
		return 1;
	}
	switch (bw) {
	case BW_HELO: proxy_helo_done(s, 0); break;
	case BW_EHLO: proxy_helo_done(s, 1); break;
	case BW_MAIL: proxy_mail_done(s); break;
	case BW_RCPT: proxy_rcpt_done(s); break;
	case BW_RSET: proxy_rset_done(s); break;
	case BW_DATA:
		proxy_data_done(s);
		if (s->phase != PH_BEREPLY)
			proxy_sess_msg_done(s);
		break;
	case BW_DOT:
		proxy_dot_done(s);
		proxy_sess_msg_done(s);
		break;
	case BW_NONE:
		PANIC("proxy_ph_bereply: no reply awaited");
	}
	return 1;
}

static void
proxy_cmd_simple(struct proxy_sess *s, const char *verb)
{
	if (proxy_sess_cmd(s, verb, verb) == 0)
		proxy_sess_relay(s);
}

/* proxy_sess_bad_state - the 503 for a verb used out of order. */
static void
proxy_sess_bad_state(struct proxy_sess *s, const struct proxy_verb *v)
{
	if (s->state == PS_REJECTED)
		proxy_sess_reply(s, "503 5.5.1 Error: connection refused, send"
		    " QUIT");
	else if (v->id == PV_MAIL && s->state == PS_GREET)
		proxy_sess_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if (v->id == PV_MAIL)
		proxy_sess_reply(s, "503 5.5.1 Error: nested MAIL command");
	else if (v->id == PV_DATA && s->state == PS_MAIL && s->nrcpt_tried > 0)
		proxy_sess_reply(s, "554 5.5.1 Error: no valid recipients");
	else if (v->id == PV_DATA && s->state == PS_MAIL)
		proxy_sess_reply(s, "503 5.5.1 Error: need RCPT command");
	else if (v->bad_state != NULL)
		proxy_sess_reply(s, "%s", v->bad_state);
	else
		proxy_sess_reply(s, "503 5.5.1 Error: bad sequence of commands");
}

/* proxy_sess_dispatch - one command line. */
static void
proxy_sess_dispatch(struct proxy_sess *s)
{
	const char *arg;
	const struct proxy_verb *v = proxy_verb_lookup(s->line, &arg);

	if (v->id == PV_NON_SMTP) {
		log_warn("%s proxy: %s NON-SMTP COMMAND %.20s: closing", SID(s),
		    s->peer, v->name);
		txn_symbol(s->t, "NON_SMTP_COMMAND", v->name);
		proxy_sess_reply(s, "421 4.7.0 %s Error: not an SMTP command,"
		    " closing", s->cfg->hostname);
		proxy_sess_enter(s, PS_CLOSING);
		return;
	}
	if (v->id == PV_UNKNOWN) {
		s->nerrors++;
		proxy_sess_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (!proxy_verb_allowed(v, s->state)) {
		s->nerrors++;
		proxy_sess_bad_state(s, v);
		return;
	}
	if (((v->flags & PVF_ARG_NEEDED) && *arg == '\0') ||
	    ((v->flags & PVF_ARG_NONE) && *arg != '\0')) {
		s->nerrors++;
		proxy_sess_reply(s, "501 5.5.4 Syntax: %s%s", v->name,
		    (v->flags & PVF_ARG_NEEDED) ? " argument" : "");
		return;
	}
	switch (v->id) {
	case PV_HELO: proxy_cmd_helo(s, arg, 0); break;
	case PV_EHLO: proxy_cmd_helo(s, arg, 1); break;
	case PV_MAIL: proxy_cmd_mail(s, arg); break;
	case PV_RCPT: proxy_cmd_rcpt(s, arg); break;
	case PV_DATA: proxy_cmd_data(s); break;
	case PV_RSET: proxy_cmd_rset(s); break;
	case PV_STARTTLS: proxy_cmd_starttls(s); break;
	case PV_AUTH: proxy_cmd_auth(s, arg); break;
	case PV_NOOP: proxy_cmd_simple(s, "NOOP"); break;
	case PV_QUIT:
		proxy_sess_reply(s, "221 2.0.0 Bye");
		proxy_sess_enter(s, PS_CLOSING);
		break;
	case PV_HELP:
		proxy_sess_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA"
		    " RSET NOOP QUIT HELP VRFY");
		break;
	case PV_VRFY:
		proxy_sess_reply(s, "252 2.0.0 Cannot VRFY; send the message and"
		    " it will be tried");
		break;
	default:
		proxy_sess_reply(s, "502 5.5.1 Error: command not supported");
		break;
	}
}

/* proxy_sess_untrusted_pp - a PROXY v2 signature as the first bytes
 * from a client that is no trusted upstream: a protocol error (v1 is
 * caught by the verb table). Returns 0 to wait for more input, 1 to go
 * on with commands, 2 when it was seen (answered, closing). */
static int
proxy_sess_untrusted_pp(struct proxy_sess *s)
{
	static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
		0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	size_t n;
	const unsigned char *p = proxy_io_peek(&s->cli, &n);

	if (n < 4 && memcmp(p, sig, n) == 0) {
		/* Too short to tell yet (or nothing read so far). */
		int r = proxy_io_read_more(&s->cli, PROXY_IO_NOWAIT);

		if (r == -2)
			return 0;
		if (r > 0)
			return 1;	/* looked at again on the next turn */
		s->pp_checked = 1;	/* EOF or error: the reader sees it */
		return 1;
	}
	s->pp_checked = 1;
	if (memcmp(p, sig, n < sizeof(sig) ? n : sizeof(sig)) != 0)
		return 1;
	txn_symbol(s->t, "NON_SMTP_COMMAND", "PROXY");
	log_warn("%s proxy: %s PROXY HEADER from an untrusted client: closing",
	    SID(s), s->peer);
	proxy_sess_reply(s, "421 4.7.0 %s Error: not an SMTP command, closing",
	    s->cfg->hostname);
	proxy_sess_enter(s, PS_CLOSING);
	return 2;
}

/*
 * proxy_sess_pipelined - after a plain HELO no PIPELINING was offered:
 * a client that sends the next command before this one's reply is
 * ratware (postscreen's pipelining test). Returns 1 when it was caught
 * (answered, closing).
 */
static int
proxy_sess_pipelined(struct proxy_sess *s)
{
	if (!s->helo_plain || proxy_io_pending(&s->cli) == 0 ||
	    s->state == PS_GREET)
		return 0;
	txn_symbol(s->t, "PIPELINING_UNOFFERED", NULL);
	log_warn("%s proxy: %s COMMAND PIPELINING without PIPELINING offered:"
	    " dropped", SID(s), s->peer);
	proxy_sess_reply(s, "554 5.5.0 %s Error: SMTP protocol synchronization",
	    s->cfg->hostname);
	proxy_sess_enter(s, PS_CLOSING);
	return 1;
}

/* proxy_ph_cmd - read and handle one command. */
static int
proxy_ph_cmd(struct proxy_sess *s, int timed_out)
{
	size_t len;
	enum proxy_line_status st;

	if (timed_out) {
		proxy_sess_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->cfg->hostname);
		proxy_sess_enter(s, PS_CLOSING);
		return 1;
	}
	if (!s->pp_checked && !s->conn->upstream) {
		int r = proxy_sess_untrusted_pp(s);

		if (r != 1 || !s->pp_checked)
			return r;
	}
	st = proxy_io_read_line(&s->cli, s->line, sizeof(s->line),
	    PROXY_CMD_LINE_MAX - 2, &len, PROXY_IO_NOWAIT);
	if (st == PL_AGAIN)
		return 0;
	s->ncmds++;
	if (st == PL_BARE_LF && s->bare_lf_ok)
		st = PL_OK;	/* a listed legacy client: LF taken as CRLF */
	switch (st) {
	case PL_OK:
		if (proxy_sess_pipelined(s))
			return 1;
		proxy_sess_dispatch(s);
		break;
	case PL_TOO_LONG:
		s->nerrors++;
		log_info("%s proxy: %s COMMAND LENGTH LIMIT", SID(s), s->peer);
		proxy_sess_reply(s, "500 5.5.2 Error: command line too long");
		break;
	case PL_BARE_LF:
	case PL_BARE_CR:
	case PL_NUL:
		s->nerrors++;
		log_info("%s proxy: %s %s IN COMMAND", SID(s), s->peer,
		    st == PL_BARE_LF ? "BARE LF" : st == PL_BARE_CR ?
		    "BARE CR" : "NUL");
		proxy_sess_reply(s, "500 5.5.2 Error: bare CR, bare LF or NUL in"
		    " command");
		break;
	default:
		log_debug("%s proxy: %s client closed (%s)", SID(s), s->peer,
		    proxy_line_status_name(st));
		proxy_sess_enter(s, PS_CLOSING);
		return 1;
	}
	if (s->nerrors >= PROXY_MAX_ERRORS && s->state != PS_CLOSING) {
		proxy_sess_reply(s, "421 4.7.0 %s Error: too many errors",
		    s->cfg->hostname);
		proxy_sess_enter(s, PS_CLOSING);
	}
	return 1;
}

/* proxy_sess_client_known - the client's address is known (from
 * accept() or the upstream's PROXY header): tell the engine, then
 * implicit TLS or the connect stage. */
static int
proxy_sess_client_known(struct proxy_sess *s)
{
	char err[256];

	txn_set_client(s->t, s->ip, s->port, NULL);
	s->bare_lf_ok = s->cfg->proxy_bare_lf_exempt[0] != '\0' &&
	    proxy_ip_in_list(s->ip, s->cfg->proxy_bare_lf_exempt) == 1;
	if (!s->conn->implicit_tls) {
		proxy_sess_connect(s);
		return 1;
	}
	if (proxy_tls_accept_start(s->conn->tls, &s->cli, err,
	    sizeof(err)) != 0) {
		log_info("%s proxy: %s TLS handshake failed: %s", SID(s),
		    s->peer, err);
		s->phase = PH_DONE;
		return 1;
	}
	s->tls_then_connect = 1;
	s->phase = PH_TLS;
	return 1;
}

/*
 * proxy_ph_upstream - the PROXY header a trusted upstream sends before
 * anything else; its client becomes ours, and is held to the per-IP
 * limit (conn->admit). Missing or malformed: 421, closing.
 */
static int
proxy_ph_upstream(struct proxy_sess *s, int timed_out)
{
	struct proxy_pp_addr a;
	char err[200] = "no PROXY header in time";
	size_t n, used;
	const unsigned char *p = proxy_io_peek(&s->cli, &n);
	int r = n > 0 ? proxy_pp_parse(p, n, &used, &a, err, sizeof(err)) : 0;

	if (r == 1) {
		proxy_io_consume(&s->cli, used);
		if (!a.local) {
			str_copy(s->ip, a.src, sizeof(s->ip));
			s->port = a.sport;
			str_copy(s->dst_ip, a.dst, sizeof(s->dst_ip));
			s->dst_port = a.dport;
		}
		str_fmt(s->peer, sizeof(s->peer), "[%s]:%d", s->ip, s->port);
		log_info("%s proxy: %s PROXY header: client [%s]:%d", SID(s),
		    s->peer, s->ip, s->port);
		if (!a.local && s->conn->admit != NULL &&
		    s->conn->admit(s->conn->admit_ctx, s->ip) != 0) {
			proxy_sess_reply(s, "421 4.7.0 Error: too many connections"
			    " from your address, try again later");
			proxy_sess_enter(s, PS_CLOSING);
			return 1;
		}
		return proxy_sess_client_known(s);
	}
	if (r == 0 && !timed_out) {
		if (s->pp_reads++ < PROXY_PP_READS) {
			int m = proxy_io_read_more(&s->cli, PROXY_IO_NOWAIT);

			if (m > 0)
				return 1;
			if (m == -2)
				return 0;
		}
		str_copy(err, "connection closed, or the header incomplete",
		    sizeof(err));
	}
	log_warn("%s proxy: %s trusted upstream without a valid PROXY header:"
	    " %s", SID(s), s->peer, err);
	proxy_sess_reply(s, "421 4.3.0 %s Error: PROXY protocol header expected",
	    s->cfg->hostname);
	proxy_sess_enter(s, PS_CLOSING);
	return 1;
}

/* proxy_ph_close - the last replies out (bounded), then done. */
static int
proxy_ph_close(struct proxy_sess *s, int timed_out)
{
	if (!timed_out && proxy_io_flush_some(&s->cli) == 1)
		return 0;
	s->phase = PH_DONE;
	return 1;
}

struct proxy_sess *
proxy_session_new(struct eng *e, int fd, const struct sockaddr *peer,
    const struct proxy_conn *conn)
{
	struct proxy_sess *s = xcalloc(1, sizeof(*s));
	struct sockaddr_storage me;
	socklen_t ml = sizeof(me);
	int one = 1;

	s->t = eng_txn_new(e);
	s->cfg = eng_cfg(s->t);
	s->conn = conn;
	s->be.io.fd = -1;
	s->phase = PH_START;
	proxy_reply_init(&s->r);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	proxy_io_init(&s->cli, fd, proxy_sess_ms(s->cfg->proxy_client_timeout));
	proxy_sockaddr_ip(peer, s->ip, sizeof(s->ip), &s->port);
	str_fmt(s->peer, sizeof(s->peer), "[%s]:%d", s->ip, s->port);
	if (getsockname(fd, (struct sockaddr *)&me, &ml) == 0)
		proxy_sockaddr_ip((struct sockaddr *)&me, s->dst_ip,
		    sizeof(s->dst_ip), &s->dst_port);
	log_info("%s proxy: connect from %s", SID(s), s->peer);
	return s;
}

int
proxy_session_backend_fd(const struct proxy_sess *s)
{
	return s->be.io.fd;
}

enum proxy_wait
proxy_session_step(struct proxy_sess *s, int timed_out, int *wait_ms)
{
	for (;;) {
		int go = 1;

		*wait_ms = proxy_sess_ms(s->phase == PH_DATA ?
		    s->cfg->proxy_data_timeout : s->cfg->proxy_client_timeout);
		if (s->state == PS_CLOSING && s->phase < PH_CLOSE)
			s->phase = PH_CLOSE;
		switch (s->phase) {
		case PH_START:
			go = s->conn->upstream ? (s->phase = PH_UPSTREAM, 1) :
			    proxy_sess_client_known(s);
			break;
		case PH_UPSTREAM: go = proxy_ph_upstream(s, timed_out); break;
		case PH_TLS: go = proxy_ph_tls(s, timed_out); break;
		case PH_PREGREET:
			go = proxy_ph_pregreet(s, timed_out, wait_ms);
			break;
		case PH_CMD: go = proxy_ph_cmd(s, timed_out); break;
		case PH_DATA: go = proxy_ph_data(s, timed_out); break;
		case PH_AUTH: go = proxy_ph_auth(s, timed_out); break;
		case PH_BEREPLY:
			go = proxy_ph_bereply(s, timed_out, wait_ms);
			break;
		case PH_CLOSE: go = proxy_ph_close(s, timed_out); break;
		case PH_DONE: return PW_DONE;
		}
		timed_out = 0;
		if (!go && s->phase == PH_BEREPLY)
			return PW_BACKEND;
		if (!go)
			return s->cli.want == POLLOUT ? PW_WRITE : PW_READ;
	}
}

void
proxy_session_free(struct proxy_sess *s)
{
	if (s == NULL)
		return;
	if (s->sp_open) {
		log_info("%s proxy: %s session ended in DATA: nothing delivered",
		    SID(s), s->peer);
		proxy_spool_free(&s->sp);
	}
	if (s->msg_open)
		proxy_msg_free(&s->msg);
	log_info("%s proxy: disconnect from %s%s%s", SID(s), s->peer,
	    s->tls_on ? " tls=" : "", s->tls_on ? s->t->tls_version : "");
	proxy_io_close(&s->cli);	/* the client is done: first */
	proxy_sess_backend_done(s);
	proxy_reply_free(&s->r);
	eng_txn_free(s->t);
	free(s);
}
