/*
 * proxy_session.c - one client connection of the SMTP proxy: the state
 * machine (enum proxy_state, proxy_sess_enter()), command dispatch
 * through the verb table (proxy_verb.c), check -> engine -> relay in
 * lockstep with the backend (proxy_backend.c), DATA received whole into
 * a spool (proxy_spool.c) and sent on with the engine's header edits
 * (proxy_msg.c). The session is implemented in four files around
 * proxy_session_int.h: this one (the phase machine, replies, verdicts,
 * commands), proxy_sess_backend.c, proxy_sess_data.c and
 * proxy_sess_auth.c.
 *
 * Stepped by proxy.c's workers; the session owns the client socket, the
 * backend connection, the spool and the txn, and frees them all in
 * proxy_session_free().
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
 * handshake, the greet pause, the PROXY header, a backend reply). The
 * backend's replies to the commands of a transaction are awaited the
 * same way (PH_BEREPLY). The engine's checks and the rarer backend
 * exchanges (XCLIENT, STARTTLS, AUTH) run on the
 * worker that runs the step: they are bounded by their timeouts, and
 * the worker pool grows when all workers are held up (proxy.c), so they
 * hold up no other client's I/O.
 *
 * Thread safety: a session is run by one worker at a time (proxy.c's
 * claim); the engine is thread-safe.
 */
#include "proxy_session_int.h"

void
proxy_sess_enter(struct proxy_sess *s, enum proxy_state st)
{
	if (s->state != st)
		log_debug("%s proxy: %s state %s -> %s", SID(s), s->peer,
		    proxy_state_name(s->state), proxy_state_name(st));
	s->state = st;
}

/* proxy_sess_reply - one reply line ("code text"), queued. */
void
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

int
proxy_sess_ms(int seconds)
{
	return seconds > 2000000 ? 2000000000 : seconds * 1000;
}

/* proxy_sess_verdict_reply - the reply for a reject/tempfail verdict;
 * the code's class wins over the action, as in milter mode. */
void
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
int
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
void
proxy_sess_reset_msg(struct proxy_sess *s)
{
	if (s->in_msg)
		eng_txn_reset(s->t);
	s->in_msg = 0;
	s->discard_msg = 0;
	s->nrcpt = 0;
	s->nrcpt_tried = 0;
}

/* proxy_sess_greet - the connection checks passed: only now the
 * backend, then the banner (at once with a kept connection, else after
 * the backend's greeting). */
static void
proxy_sess_greet(struct proxy_sess *s)
{
	if (proxy_sess_open_backend(s) == 0)
		proxy_sess_banner(s);
}

/* proxy_sess_banner - the backend is ready: our 220. */
void
proxy_sess_banner(struct proxy_sess *s)
{
	proxy_sess_reply(s, "220 %s ESMTP", s->cfg->hostname);
	proxy_sess_enter(s, PS_GREET);
	s->phase = PH_CMD;
}

/* proxy_sess_connect - the engine's connect stage, then the greet pause
 * or at once the backend and the banner. */
void
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

/* proxy_sess_greeted - the client's HELO/EHLO is accepted: our reply,
 * and the session is ready for MAIL. */
static void
proxy_sess_greeted(struct proxy_sess *s, int ehlo)
{
	s->be_txn = 0;
	if (ehlo)
		proxy_sess_ehlo_reply(s);
	else
		proxy_sess_reply(s, "250 %s", s->cfg->hostname);
	s->helo_plain = !ehlo;
	s->helo_done = 1;
	proxy_sess_enter(s, PS_READY);
}

static void
proxy_cmd_helo(struct proxy_sess *s, const char *arg, int ehlo)
{
	const char *verb = ehlo ? "EHLO" : "HELO";
	struct verdict v;
	char cmd[PROXY_CMD_LINE_MAX];

	if (!proxy_helo_arg_ok(arg)) {
		proxy_sess_reply(s, "501 5.5.4 Syntax: %s hostname",
		    verb);
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
	str_fmt(cmd, sizeof(cmd), "%s %s", verb, arg);
	if (s->be_reused) {
		/* A kept connection's capabilities are known: answer now and
		 * read the backend's reply before the next command goes to
		 * it (proxy_sess_settle), one round trip less per session.
		 * A refusal is passed on then. */
		if (proxy_sess_send(s, cmd, verb) != 0)
			return;
		s->be_owed = verb;
		proxy_sess_greeted(s, ehlo);
		return;
	}
	(void)proxy_sess_ask(s, cmd, verb,
	    ehlo ? BW_EHLO : BW_HELO);
}

/* proxy_helo_done - the backend's reply to the client's HELO/EHLO. */
void
proxy_helo_done(struct proxy_sess *s, int ehlo)
{
	if (s->r.code != 250) {
		proxy_sess_relay(s);
		return;
	}
	if (ehlo)
		proxy_backend_parse_ehlo(&s->be, &s->r);
	proxy_sess_greeted(s, ehlo);
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
void
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
void
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

/* ---- the rest ---- */

static void
proxy_cmd_rset(struct proxy_sess *s)
{
	proxy_sess_reset_msg(s);
	(void)proxy_sess_ask(s, "RSET", "RSET", BW_RSET);
}

/* proxy_rset_done - the backend's reply to the client's RSET. */
void
proxy_rset_done(struct proxy_sess *s)
{
	proxy_sess_relay(s);
	if (s->r.code / 100 == 2)
		s->be_txn = 0;
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
	s->cli.turn_hints = 1;
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

void
proxy_session_client_readable(struct proxy_sess *s)
{
	proxy_io_readable(&s->cli);
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
			return s->be_wait == BW_CONNECT ? PW_BACKEND_OUT :
			    PW_BACKEND;
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
