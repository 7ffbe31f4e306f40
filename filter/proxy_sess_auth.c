/*
 * proxy_sess_auth.c - STARTTLS on the client side (RFC 3207: what was
 * sent after the command is discarded, the session starts afresh inside
 * TLS) and AUTH, relayed to the backend exchange by exchange, offered
 * only inside TLS; its 235 marks the txn authenticated.
 */
#include "proxy_session_int.h"

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

void
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
int
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
void
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
int
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
