/*
 * proxy_sess_backend.c - a proxy session's backend connection: opened
 * (or taken from the kept ones) only after the connect-stage checks,
 * PROXY header, greeting, STARTTLS and XCLIENT; commands sent in
 * lockstep, their replies awaited in the event loop (PH_BEREPLY) or, for
 * the rarer exchanges, in the step; a kept connection's EHLO answered at
 * once and settled before the next command; failures answered 421; the
 * connection kept for the next client or closed at the end.
 */
#include "proxy_session_int.h"

/* proxy_sess_backend_fail - the backend is gone: 421, end the session. */
void
proxy_sess_backend_fail(struct proxy_sess *s, const char *what, const char *err)
{
	log_warn("%s proxy: %s BACKEND FAILURE %s at %s: %s", SID(s), s->peer,
	    s->be.name, what, err);
	proxy_sess_reply(s, "421 4.4.2 %s Error: backend unavailable, try again"
	    " later", s->cfg->hostname);
	s->be.connected = 0;
	proxy_sess_enter(s, PS_CLOSING);
}


/*
 * proxy_sess_settle - read the reply owed for a HELO or EHLO sent without
 * waiting (see proxy_cmd_helo). 0 when it was 250 (or none was owed);
 * -1 when the current command has been answered: 421 after a backend
 * failure, or the backend's refusal of the HELO/EHLO, passed on (the
 * client must then say HELO/EHLO again).
 */
int
proxy_sess_settle(struct proxy_sess *s)
{
	const char *owed = s->be_owed;
	char err[256];

	if (owed == NULL)
		return 0;
	s->be_owed = NULL;
	if (proxy_backend_read_reply(&s->be, &s->r,
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, owed, err);
		return -1;
	}
	if (s->r.code == 250) {
		/* After HELO the kept connection's capabilities still hold:
		 * the client, in plain SMTP, uses none of them. */
		if (strcmp(owed, "EHLO") == 0)
			proxy_backend_parse_ehlo(&s->be, &s->r);
		return 0;
	}
	log_info("%s proxy: %s backend refused %s (%d): passed on to the"
	    " next command", SID(s), s->peer, owed, s->r.code);
	proxy_sess_relay(s);
	s->helo_done = 0;
	if (s->state != PS_CLOSING)
		proxy_sess_enter(s, PS_GREET);
	return -1;
}

/* proxy_sess_cmd - send line to the backend; -1 (after the 421, or
 * another answer to the client's command) when it failed. */
int
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
int
proxy_sess_ask(struct proxy_sess *s, const char *line, const char *what,
    enum proxy_be_wait bw)
{
	if (proxy_sess_send(s, line, what) != 0)
		return -1;
	proxy_sess_await(s, what, bw);
	return 0;
}

/* proxy_sess_send - send line to the backend, its reply read later
 * (proxy_sess_await, or proxy_sess_settle for a kept connection's EHLO).
 * -1 when the client's command has been answered (a 421, or an EHLO
 * refusal still owed). */
int
proxy_sess_send(struct proxy_sess *s, const char *line, const char *what)
{
	char err[256];

	if (proxy_sess_settle(s) != 0)
		return -1;
	if (proxy_backend_send(&s->be, line, err, sizeof(err)) != 0) {
		proxy_sess_backend_fail(s, what, err);
		return -1;
	}
	return 0;
}

/* proxy_sess_await - wait in PH_BEREPLY for the reply to what was sent
 * last (what: its name for log lines); it goes on by bw. */
void
proxy_sess_await(struct proxy_sess *s, const char *what, enum proxy_be_wait bw)
{
	proxy_backend_reply_begin(&s->r);
	s->be_wait = bw;
	s->be_what = what;
	s->be_until = util_mono_ms() + proxy_sess_ms(bw == BW_DOT ?
	    s->cfg->proxy_backend_data_timeout : s->cfg->proxy_backend_timeout);
	s->be_asked = 1;
	s->phase = PH_BEREPLY;
}

/* proxy_sess_relay - pass the backend's reply on; a 421 ends both. */
void
proxy_sess_relay(struct proxy_sess *s)
{
	proxy_reply_put(&s->cli, &s->r, NULL);
	if (s->r.code == 421)
		proxy_sess_enter(s, PS_CLOSING);
}

/* proxy_sess_backend_rset - end the backend's transaction quietly (the
 * client gets our reply, not this one). -1 when the backend failed. */
int
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
int
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
 * HELO/EHLO reply still owed must be 250, and a transaction still open on
 * the backend must be ended by an RSET answered 250; a connection with
 * neither goes back as it is (one round trip less per session). */
void
proxy_sess_backend_done(struct proxy_sess *s)
{
	int ok = 1;

	if (s->be_owed != NULL && s->be.connected) {
		s->be_owed = NULL;
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
static int proxy_sess_backend_connected(struct proxy_sess *s);
static void proxy_sess_opened(struct proxy_sess *s, int ok, long long t0);

/*
 * proxy_sess_open_backend - a kept connection (proxy_backend_reuse): 0;
 * or connect (unless the backend is taken as down after timeouts:
 * proxy_bepool_is_down): 1, the greeting then awaited in PH_BEREPLY
 * (proxy_greeting_done: STARTTLS when configured, then the client's
 * banner). -1 after the client's 421.
 */
int
proxy_sess_open_backend(struct proxy_sess *s)
{
	char err[256];
	long long down;

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
	s->be_t0 = util_mono_ms();
	if (proxy_sess_connect_backend(s) != 0) {
		proxy_sess_opened(s, 0, s->be_t0);
		return -1;
	}
	return 1;	/* connect and greeting awaited: proxy_greeting_done */
}

/* proxy_sess_opened - tell the pool how opening a connection went (its
 * "down" rule counts slow failures). */
static void
proxy_sess_opened(struct proxy_sess *s, int ok, long long t0)
{
	if (s->conn->bepool != NULL)
		proxy_bepool_opened(s->conn->bepool, s->cfg->proxy_backend, ok,
		    util_mono_ms() - t0);
}

/* proxy_greeting_done - the new connection's greeting: 220, then
 * STARTTLS when configured, then the client's banner. */
static void
proxy_greeting_done(struct proxy_sess *s)
{
	char err[64];

	if (s->r.code != 220) {
		proxy_sess_opened(s, 0, s->be_t0);
		str_fmt(err, sizeof(err), "greeting %d", s->r.code);
		proxy_sess_backend_fail(s, "greeting", err);
		return;
	}
	proxy_sess_opened(s, 1, s->be_t0);
	if (s->conn->be_tls != NULL && proxy_sess_backend_starttls(s) != 0)
		return;
	proxy_sess_banner(s);
}

/* proxy_sess_connect_backend - begin the connect: done at once, or
 * awaited in PH_BEREPLY (BW_CONNECT: proxy_ph_beconnect); then the PROXY
 * header and the greeting. -1 after the client's 421. */
static int
proxy_sess_connect_backend(struct proxy_sess *s)
{
	char err[256];
	int connect_ms = proxy_sess_ms(s->cfg->proxy_backend_connect_timeout);

	switch (proxy_backend_connect_start(&s->be, s->cfg->proxy_backend,
	    proxy_sess_ms(s->cfg->proxy_backend_timeout), err, sizeof(err))) {
	case 0:
		return proxy_sess_backend_connected(s);
	case 1:
		s->be_wait = BW_CONNECT;
		s->be_what = "connect";
		s->be_until = util_mono_ms() + connect_ms;
		s->phase = PH_BEREPLY;
		return 0;
	default:
		proxy_sess_backend_fail(s, "connect", err);
		return -1;
	}
}

/* proxy_ph_beconnect - PH_BEREPLY for BW_CONNECT: the connect went
 * through (or the next address is tried), or its time ran out. */
static int
proxy_ph_beconnect(struct proxy_sess *s, int timed_out, int *wait_ms)
{
	int connect_ms = proxy_sess_ms(s->cfg->proxy_backend_connect_timeout);
	struct pollfd pf = { .fd = s->be.io.fd, .events = POLLOUT };
	long long now = util_mono_ms();
	char err[256];
	int rc;

	timed_out = timed_out && now >= s->be_until;
	if (!timed_out && poll(&pf, 1, 0) == 0) {
		*wait_ms = (int)(s->be_until > now ? s->be_until - now : 1);
		return 0;	/* not yet (woken for something else) */
	}
	rc = proxy_backend_connect_step(&s->be, timed_out, connect_ms, err,
	    sizeof(err));
	if (rc == 1) {
		s->be_until = now + connect_ms;
		*wait_ms = connect_ms;
		return 0;
	}
	s->be_wait = BW_NONE;
	s->phase = PH_CMD;
	if (rc < 0 || proxy_sess_backend_connected(s) != 0) {
		if (rc < 0)
			proxy_sess_backend_fail(s, "connect", err);
		proxy_sess_opened(s, 0, s->be_t0);
	}
	return 1;
}

/* proxy_sess_backend_connected - the PROXY header when configured, then
 * the greeting awaited. -1 after the client's 421. */
static int
proxy_sess_backend_connected(struct proxy_sess *s)
{
	if (s->cfg->proxy_backend_forward == CFG_FORWARD_PROXY_V1 ||
	    s->cfg->proxy_backend_forward == CFG_FORWARD_PROXY_V2) {
		unsigned char hdr[128];
		size_t len;

		if (proxy_pp_build(s->cfg->proxy_backend_forward ==
		    CFG_FORWARD_PROXY_V1 ? 1 : 2, s->t->client_ip,
		    s->t->client_port, s->dst_ip, s->dst_port, hdr, sizeof(hdr),
		    &len) != 0 || proxy_io_put(&s->be.io, hdr, len) != 0 ||
		    proxy_io_flush(&s->be.io) != 0) {
			proxy_sess_backend_fail(s, "PROXY header", "cannot build"
			    " or send it (address families differ?)");
			return -1;
		}
	}
	proxy_sess_await(s, "greeting", BW_GREETING);
	return 0;
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
int
proxy_ph_bereply(struct proxy_sess *s, int timed_out, int *wait_ms)
{
	enum proxy_be_wait bw = s->be_wait;
	long long now = util_mono_ms();
	int plain = s->conn->be_tls == NULL, rc;
	char err[256];

	if (bw == BW_CONNECT)
		return proxy_ph_beconnect(s, timed_out, wait_ms);
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
		if (bw == BW_GREETING)
			proxy_sess_opened(s, 0, s->be_t0);
		proxy_sess_backend_fail(s, s->be_what, err);
		if (bw == BW_DATA || bw == BW_DOT)
			proxy_sess_msg_done(s);
		return 1;
	}
	switch (bw) {
	case BW_GREETING: proxy_greeting_done(s); break;
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
	case BW_CONNECT:
		PANIC("proxy_ph_bereply: no reply awaited");
	}
	return 1;
}
