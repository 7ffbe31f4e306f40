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
 * Thread safety: one thread per session; the engine is thread-safe.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
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
#include "proxy_io.h"
#include "proxy_msg.h"
#include "proxy_session.h"
#include "proxy_spool.h"
#include "proxy_verb.h"
#include "txn.h"
#include "util.h"

#define PROXY_MAX_ERRORS	20	/* bad commands before 421 */

struct proxy_sess {
	struct txn		*t;
	const struct cfg	*cfg;
	struct proxy_io		 cli;
	struct proxy_backend	 be;
	struct proxy_reply	 r;		/* the last backend reply */
	enum proxy_state	 state;
	char			 peer[INET6_ADDRSTRLEN + 16];	/* "[ip]:port" */
	int			 be_ehlo;	/* we sent our own EHLO */
	int			 xclient_done;
	int			 helo_done;	/* client HELO/EHLO answered 250 */
	int			 in_msg;	/* the txn holds a MAIL */
	int			 discard_conn, discard_msg;
	size_t			 nrcpt;		/* accepted by the backend */
	size_t			 nrcpt_tried;
	int			 nerrors;
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

/* proxy_sess_cmd - send line to the backend; -1 (after the 421) when it
 * failed. */
static int
proxy_sess_cmd(struct proxy_sess *s, const char *line, const char *what)
{
	char err[256];

	if (proxy_backend_command(&s->be, line, &s->r,
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, what, err);
		return -1;
	}
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
	return 0;
}


/* ---- connection set-up ---- */

/* proxy_sess_xclient - tell a Postfix backend the real client before the
 * client's own HELO/EHLO is relayed. Fails closed: a backend that does
 * not take XCLIENT would see every client as the proxy itself. */
static int
proxy_sess_xclient(struct proxy_sess *s, const char *proto, const char *helo)
{
	char line[PROXY_CMD_LINE_MAX], cmd[300];
	const char *name = s->t->iprev == CHK_PASS ? s->t->iprev_name : NULL;

	if (!s->be_ehlo) {
		str_fmt(cmd, sizeof(cmd), "EHLO %s", s->cfg->hostname);
		if (proxy_sess_cmd(s, cmd, "EHLO (for XCLIENT)") != 0)
			return -1;
		if (s->r.code != 250) {
			proxy_sess_backend_fail(s, "EHLO (for XCLIENT)",
			    "EHLO refused");
			return -1;
		}
		proxy_backend_parse_ehlo(&s->be, &s->r);
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

/* proxy_sess_open_backend - connect and read the greeting; 421 to the
 * client when that fails. */
static int
proxy_sess_open_backend(struct proxy_sess *s)
{
	char err[256];

	if (proxy_backend_connect(&s->be, s->cfg->proxy_backend,
	    proxy_sess_ms(s->cfg->proxy_backend_connect_timeout),
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, "connect", err);
		return -1;
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

/* proxy_sess_connect - engine connect stage, backend, banner. */
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
		return;
	}
	if (v.action == VERDICT_DISCARD)
		s->discard_conn = 1;
	/* Only now, with the connection checks passed, the backend. */
	if (proxy_sess_open_backend(s) != 0)
		return;
	proxy_sess_reply(s, "220 %s ESMTP", s->cfg->hostname);
	proxy_sess_enter(s, PS_GREET);
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
	if (proxy_sess_cmd(s, cmd, ehlo ? "EHLO" : "HELO") != 0)
		return;
	if (s->r.code != 250) {
		proxy_sess_relay(s);
		return;
	}
	if (ehlo) {
		proxy_backend_parse_ehlo(&s->be, &s->r);
		proxy_sess_ehlo_reply(s);
	} else {
		proxy_sess_reply(s, "250 %s", s->cfg->hostname);
	}
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
	if (proxy_sess_cmd(s, cmd, "MAIL") != 0)
		return;
	proxy_sess_relay(s);
	if (s->r.code / 100 == 2)
		proxy_sess_enter(s, PS_MAIL);
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
	if (proxy_sess_cmd(s, cmd, "RCPT") != 0)
		return;
	proxy_sess_relay(s);
	if (s->r.code / 100 == 2) {
		s->nrcpt++;
		proxy_sess_enter(s, PS_RCPT);
	}
}

/* ---- DATA ---- */

enum proxy_rx {
	RX_OK, RX_TOO_BIG, RX_LONG_LINE, RX_FRAMING, RX_SPOOL_ERR,
	RX_TIMEOUT, RX_GONE,
};

/*
 * proxy_sess_receive - read the message up to the final dot into sp,
 * removing the dot-stuffing. Over-long lines and too much data are read
 * to the end and reported; a framing error (bare CR/LF, NUL) stops at
 * once.
 */
static enum proxy_rx
proxy_sess_receive(struct proxy_sess *s, struct proxy_spool *sp)
{
	size_t limit = (size_t)s->cfg->message_size_limit, len;
	int too_big = 0, long_line = 0, spool_err = 0;
	char err[256];

	for (;;) {
		enum proxy_line_status st = proxy_io_read_line(&s->cli, s->line,
		    sizeof(s->line), PROXY_TEXT_LINE_MAX - 2, &len,
		    proxy_sess_ms(s->cfg->proxy_data_timeout));
		const char *p = s->line;

		switch (st) {
		case PL_OK:
			break;
		case PL_TOO_LONG:
			long_line = 1;
			continue;
		case PL_BARE_LF:
		case PL_BARE_CR:
		case PL_NUL:
			log_warn("%s proxy: %s %s IN DATA: message refused,"
			    " closing", SID(s), s->peer,
			    st == PL_BARE_LF ? "BARE LF" : st == PL_BARE_CR ?
			    "BARE CR" : "NUL");
			txn_symbol(s->t, "SMTP_BAD_FRAMING",
			    proxy_line_status_name(st));
			return RX_FRAMING;
		case PL_TIMEOUT:
			return RX_TIMEOUT;
		default:
			return RX_GONE;
		}
		if (len == 1 && p[0] == '.')
			break;
		if (p[0] == '.') {
			p++;
			len--;
		}
		if (too_big || long_line || spool_err)
			continue;
		if (sp->len + len + 2 > limit) {
			too_big = 1;
			continue;
		}
		if (proxy_spool_append(sp, p, len, err, sizeof(err)) != 0 ||
		    proxy_spool_append(sp, "\r\n", 2, err, sizeof(err)) != 0) {
			log_err("%s proxy: %s", SID(s), err);
			spool_err = 1;
		}
	}
	if (spool_err || proxy_spool_finish(sp, err, sizeof(err)) != 0)
		return RX_SPOOL_ERR;
	return too_big ? RX_TOO_BIG : long_line ? RX_LONG_LINE : RX_OK;
}

/*
 * proxy_sess_deliver - send the checked message to the backend and pass
 * its final reply on. On any backend failure the client gets 421: the
 * message is not accepted, the client keeps it and retries.
 */
static void
proxy_sess_deliver(struct proxy_sess *s, struct proxy_msg *m,
    struct proxy_spool *sp)
{
	char err[256];

	if (proxy_sess_cmd(s, "DATA", "DATA") != 0)
		return;
	if (s->r.code != 354) {
		if (s->r.code / 100 == 4 || s->r.code / 100 == 5)
			proxy_sess_relay(s);
		else
			proxy_sess_backend_fail(s, "DATA", "unexpected reply");
		return;
	}
	if (proxy_msg_write(m, s->t, sp, &s->be.io) != 0 ||
	    proxy_io_flush(&s->be.io) != 0) {
		proxy_sess_backend_fail(s, "message", "write error");
		return;
	}
	if (proxy_backend_read_reply(&s->be, &s->r,
	    proxy_sess_ms(s->cfg->proxy_backend_data_timeout), err,
	    sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, "end of data", err);
		return;
	}
	log_info("%s proxy: %s message of %zu bytes for %zu recipient(s):"
	    " backend %d", SID(s), s->peer, sp->len, s->nrcpt, s->r.code);
	proxy_sess_relay(s);
}

/* proxy_sess_eom - checks at end of data, then deliver or refuse. */
static void
proxy_sess_eom(struct proxy_sess *s, struct proxy_spool *sp)
{
	struct proxy_msg m;
	struct verdict v;
	char why[200];

	if (proxy_msg_parse(&m, sp, (size_t)s->cfg->max_header_bytes, why,
	    sizeof(why)) != 0) {
		proxy_sess_reply(s, "%s", why);
		proxy_msg_free(&m);
		(void)proxy_sess_backend_rset(s);
		return;
	}
	proxy_msg_eval(&m, s->t, sp, &v);
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
		/* XXX quarantine has no backend equivalent yet: the message
		 * is delivered with the verdict headers. */
		if (v.action == VERDICT_QUARANTINE)
			log_warn("%s proxy: %s quarantine not available in proxy"
			    " mode: delivered with headers", SID(s), s->peer);
		proxy_sess_deliver(s, &m, sp);
	}
	proxy_msg_free(&m);
}

static void
proxy_cmd_data(struct proxy_sess *s)
{
	struct proxy_spool sp;
	struct verdict v;
	enum proxy_rx rx;

	eng_event(s->t, TXN_EV_DATA, &v);
	if (proxy_sess_decide(s, &v, 0))
		return;
	proxy_sess_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	proxy_sess_enter(s, PS_DATA);
	proxy_spool_init(&sp, (size_t)s->cfg->proxy_spool_memory,
	    s->cfg->proxy_spool_dir);
	rx = proxy_sess_receive(s, &sp);
	switch (rx) {
	case RX_OK:
		proxy_sess_eom(s, &sp);
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
	proxy_spool_free(&sp);
	proxy_sess_reset_msg(s);
	if (s->state == PS_DATA)
		proxy_sess_enter(s, PS_READY);
}

/* ---- the rest ---- */

static void
proxy_cmd_rset(struct proxy_sess *s)
{
	proxy_sess_reset_msg(s);
	if (proxy_sess_cmd(s, "RSET", "RSET") != 0)
		return;
	proxy_sess_relay(s);
	if (s->r.code / 100 == 2 && s->state != PS_CLOSING)
		proxy_sess_enter(s, s->helo_done ? PS_READY : PS_GREET);
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
		proxy_sess_reply(s, "502 5.5.1 Error: command not implemented");
		break;
	}
}

/* proxy_sess_command - read and handle one command; 0 to go on. */
static int
proxy_sess_command(struct proxy_sess *s)
{
	size_t len;
	enum proxy_line_status st = proxy_io_read_line(&s->cli, s->line,
	    sizeof(s->line), PROXY_CMD_LINE_MAX - 2, &len,
	    proxy_sess_ms(s->cfg->proxy_client_timeout));

	switch (st) {
	case PL_OK:
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
	case PL_TIMEOUT:
		proxy_sess_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->cfg->hostname);
		return -1;
	default:
		log_debug("%s proxy: %s client closed (%s)", SID(s), s->peer,
		    proxy_line_status_name(st));
		return -1;
	}
	if (s->nerrors >= PROXY_MAX_ERRORS && s->state != PS_CLOSING) {
		proxy_sess_reply(s, "421 4.7.0 %s Error: too many errors",
		    s->cfg->hostname);
		return -1;
	}
	return s->state == PS_CLOSING ? -1 : 0;
}

/* proxy_sess_peer - client address and port from accept(). */
static void
proxy_sess_peer(const struct sockaddr *sa, char *ip, size_t iplen, int *port)
{
	*port = 0;
	str_copy(ip, "0.0.0.0", iplen);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		*port = ntohs(s4->sin_port);
		inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)iplen);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		*port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip,
			    (socklen_t)iplen);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)iplen);
	}
}

void
proxy_session_run(struct eng *e, int fd, const struct sockaddr *peer)
{
	struct proxy_sess *s = xcalloc(1, sizeof(*s));
	char ip[INET6_ADDRSTRLEN];
	int port, one = 1;

	s->t = eng_txn_new(e);
	s->cfg = eng_cfg(s->t);
	s->be.io.fd = -1;
	proxy_reply_init(&s->r);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	proxy_io_init(&s->cli, fd, proxy_sess_ms(s->cfg->proxy_client_timeout));
	proxy_sess_peer(peer, ip, sizeof(ip), &port);
	str_fmt(s->peer, sizeof(s->peer), "[%s]:%d", ip, port);
	txn_set_client(s->t, ip, port, NULL);
	log_info("%s proxy: connect from %s", SID(s), s->peer);
	proxy_sess_connect(s);
	while (s->state != PS_CLOSING && proxy_sess_command(s) == 0)
		;
	(void)proxy_io_flush(&s->cli);
	proxy_backend_close(&s->be);
	log_info("%s proxy: disconnect from %s", SID(s), s->peer);
	proxy_io_close(&s->cli);
	proxy_reply_free(&s->r);
	eng_txn_free(s->t);
	free(s);
}
