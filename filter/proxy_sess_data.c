/*
 * proxy_sess_data.c - a proxy session's DATA: the message received line
 * by line into a spool (without its dot-stuffing; bare CR, bare LF and
 * NUL refused), checked at its end, then sent to the backend with the
 * engine's header edits; the client gets the backend's final reply.
 */
#include "proxy_session_int.h"

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
 * its final reply on: as one BDAT ... LAST when the backend offers
 * CHUNKING (proxy_backend_chunking), else DATA, then the message after
 * the 354. On any backend failure the client gets 421: the message is
 * not accepted, the client keeps it and retries.
 */
static void
proxy_sess_deliver(struct proxy_sess *s)
{
	s->be_bdat = 0;
	if (proxy_sess_settle(s) != 0)
		return;		/* answered */
	if (!s->cfg->proxy_backend_chunking ||
	    (s->be.caps & PB_CAP_CHUNKING) == 0) {
		(void)proxy_sess_ask(s, "DATA", "DATA", BW_DATA);
		return;
	}
	if (!s->be.connected) {
		proxy_sess_backend_fail(s, "BDAT", "not connected");
		return;
	}
	if (proxy_msg_write_bdat(&s->msg, s->t, &s->sp, &s->be.io) != 0 ||
	    proxy_io_flush(&s->be.io) != 0) {
		proxy_sess_backend_fail(s, "message", "write error");
		return;
	}
	s->be_bdat = 1;
	proxy_sess_await(s, "end of data", BW_DOT);
}

/* proxy_data_done - the backend's reply to DATA: on 354 the message
 * follows, and its final reply is waited for (BW_DOT). */
void
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
	proxy_sess_await(s, "end of data", BW_DOT);
}

/* proxy_dot_done - the backend's final reply to the message (to its
 * dot, or to BDAT LAST). A refused BDAT is followed by an RSET, so that
 * the backend's transaction is over whatever its reading of RFC 3030. */
void
proxy_dot_done(struct proxy_sess *s)
{
	s->be_txn = 0;	/* any final reply ends the transaction */
	log_info("%s proxy: %s message of %zu bytes for %zu recipient(s):"
	    " backend %d%s", SID(s), s->peer, s->sp.len, s->nrcpt, s->r.code,
	    s->be_bdat ? " (BDAT)" : "");
	proxy_sess_relay(s);
	if (s->be_bdat && s->r.code / 100 != 2 && s->state != PS_CLOSING)
		(void)proxy_sess_backend_rset(s);
	s->be_bdat = 0;
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

void
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
void
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
int
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
