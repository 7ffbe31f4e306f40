/*
 * proxy_verb.c - the SMTP proxy's verb table and argument parsers.
 *
 * Called by proxy_session.c for every client command. The table says,
 * per verb, in which session states it is allowed, whether it takes an
 * argument and whether it is relayed to the backend; the session's
 * handlers do the rest. Pure functions over constant data: thread-safe.
 *
 * Security: addresses are parsed strictly (angle brackets required, no
 * control characters, at most PROXY_PATH_MAX octets) and relayed in a
 * rebuilt, canonical form, never as the client wrote the line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy_verb.h"
#include "util.h"

#define ST(x)		PS_BIT(PS_##x)
#define SMTP_STATES	PS_ANY_SMTP

static const struct proxy_verb proxy_verbs[] = {
	{ "HELO", PV_HELO, SMTP_STATES, PVF_ARG_NEEDED | PVF_RELAY | PVF_BEFORE_TLS,
	  NULL },
	{ "EHLO", PV_EHLO, SMTP_STATES, PVF_ARG_NEEDED | PVF_RELAY | PVF_BEFORE_TLS,
	  NULL },
	{ "MAIL", PV_MAIL, ST(READY), PVF_ARG_NEEDED | PVF_RELAY,
	  NULL },	/* the handler explains which order is wrong */
	{ "RCPT", PV_RCPT, ST(MAIL) | ST(RCPT), PVF_ARG_NEEDED | PVF_RELAY,
	  "503 5.5.1 Error: need MAIL command" },
	{ "DATA", PV_DATA, ST(RCPT), PVF_ARG_NONE | PVF_RELAY, NULL },
	{ "RSET", PV_RSET, SMTP_STATES, PVF_ARG_NONE | PVF_RELAY | PVF_BEFORE_TLS,
	  NULL },
	{ "NOOP", PV_NOOP, SMTP_STATES, PVF_RELAY | PVF_BEFORE_TLS, NULL },
	{ "QUIT", PV_QUIT, SMTP_STATES | ST(REJECTED), PVF_ARG_NONE | PVF_BEFORE_TLS,
	  NULL },
	{ "HELP", PV_HELP, SMTP_STATES, PVF_BEFORE_TLS, NULL },
	{ "VRFY", PV_VRFY, SMTP_STATES, PVF_ARG_NEEDED, NULL },
	{ "EXPN", PV_EXPN, SMTP_STATES, 0, NULL },
	{ "STARTTLS", PV_STARTTLS, ST(GREET) | ST(READY),
	  PVF_ARG_NONE | PVF_BEFORE_TLS,
	  "503 5.5.1 Error: MAIL transaction in progress" },
	{ "AUTH", PV_AUTH, ST(READY), PVF_ARG_NEEDED | PVF_RELAY,
	  "503 5.5.1 Error: send EHLO first, and not in a MAIL transaction" },
	{ "BDAT", PV_BDAT, SMTP_STATES, 0, NULL },
	/* Not SMTP: web and proxy probes sent to port 25. */
	{ "GET", PV_NON_SMTP, ~0u, 0, NULL },
	{ "POST", PV_NON_SMTP, ~0u, 0, NULL },
	{ "HEAD", PV_NON_SMTP, ~0u, 0, NULL },
	{ "PUT", PV_NON_SMTP, ~0u, 0, NULL },
	{ "CONNECT", PV_NON_SMTP, ~0u, 0, NULL },
	{ "OPTIONS", PV_NON_SMTP, ~0u, 0, NULL },
	{ "USER", PV_NON_SMTP, ~0u, 0, NULL },
	/* A PROXY protocol v1 header from a client that is not a trusted
	 * upstream (those are read before any command). */
	{ "PROXY", PV_NON_SMTP, ~0u, 0, NULL },
};

static const struct proxy_verb proxy_verb_unknown = {
	"", PV_UNKNOWN, SMTP_STATES, 0, NULL
};

const char *
proxy_state_name(enum proxy_state s)
{
	switch (s) {
	case PS_CONNECT: return "CONNECT";
	case PS_GREET: return "GREET";
	case PS_READY: return "READY";
	case PS_MAIL: return "MAIL";
	case PS_RCPT: return "RCPT";
	case PS_DATA: return "DATA";
	case PS_REJECTED: return "REJECTED";
	case PS_CLOSING: return "CLOSING";
	}
	return "?";
}

const struct proxy_verb *
proxy_verb_lookup(const char *line, const char **arg)
{
	size_t n = strcspn(line, " ");
	const char *a = line + n;

	while (*a == ' ')
		a++;
	*arg = a;
	for (size_t i = 0; i < ARRAY_LEN(proxy_verbs); i++)
		if (strlen(proxy_verbs[i].name) == n &&
		    strncasecmp(proxy_verbs[i].name, line, n) == 0)
			return &proxy_verbs[i];
	return &proxy_verb_unknown;
}

int
proxy_verb_allowed(const struct proxy_verb *v, enum proxy_state s)
{
	return (v->states & PS_BIT(s)) != 0;
}

/* proxy_path_char_ok - printable ASCII or UTF-8 (SMTPUTF8); no <, >. */
static int
proxy_path_char_ok(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '<' && c != '>';
}

int
proxy_parse_path(const char *arg, const char *kw, char *addr, size_t addrlen,
    const char **params, char *why, size_t whylen)
{
	size_t kl = strlen(kw), n = 0;
	const char *p;
	int quoted = 0;

	if (strncasecmp(arg, kw, kl) != 0) {
		str_fmt(why, whylen, "Syntax: %s<address>", kw);
		return -1;
	}
	p = arg + kl;
	while (*p == ' ')
		p++;
	if (*p != '<') {
		str_fmt(why, whylen, "Syntax: %s<address> (angle brackets needed)",
		    kw);
		return -1;
	}
	for (p++; *p != '\0' && (quoted || *p != '>'); p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			quoted = !quoted;
		else if (quoted && c == '\\' && p[1] != '\0') {
			if (n + 1 >= addrlen || n + 1 >= PROXY_PATH_MAX)
				goto too_long;
			addr[n++] = *p++;
			c = (unsigned char)*p;
		} else if (!quoted && !proxy_path_char_ok(c)) {
			str_fmt(why, whylen, "Bad character in address");
			return -1;
		}
		if (c < 0x20 || c == 0x7f) {
			str_fmt(why, whylen, "Bad character in address");
			return -1;
		}
		if (n + 1 >= addrlen || n + 1 > PROXY_PATH_MAX)
			goto too_long;
		addr[n++] = (char)c;
	}
	if (*p != '>') {
		str_fmt(why, whylen, "Syntax: %s<address> (missing '>')", kw);
		return -1;
	}
	addr[n] = '\0';
	p++;
	if (*p != '\0' && *p != ' ') {
		str_fmt(why, whylen, "Syntax: text after the address");
		return -1;
	}
	while (*p == ' ')
		p++;
	*params = p;
	return 0;
too_long:
	str_fmt(why, whylen, "Address too long");
	return -1;
}

/* proxy_param_append - " KEY[=VALUE]" to out; -1 when it does not fit. */
static int
proxy_param_append(char *out, size_t outlen, const char *kv)
{
	size_t used = strlen(out);

	return str_fmt(out + used, outlen - used, " %s", kv);
}

int
proxy_mail_params(const char *params, unsigned long long *size, char *out,
    size_t outlen, char *why, size_t whylen)
{
	char tmp[512];
	char *save = NULL, *tok;

	*size = 0;
	out[0] = '\0';
	if (str_copy(tmp, params, sizeof(tmp)) != 0) {
		str_fmt(why, whylen, "555 5.5.4 Parameters too long");
		return -1;
	}
	for (tok = strtok_r(tmp, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : NULL;
		size_t kl = eq ? (size_t)(eq - tok) : strlen(tok);

		if (kl == 4 && strncasecmp(tok, "SIZE", 4) == 0 && val != NULL) {
			char *end;

			errno = 0;
			if (!isdigit((unsigned char)*val) ||
			    (*size = strtoull(val, &end, 10), errno != 0) ||
			    *end != '\0' || strlen(val) > 20) {
				str_fmt(why, whylen, "501 5.5.4 Bad SIZE parameter");
				return -1;
			}
			char kv[40];
			str_fmt(kv, sizeof(kv), "SIZE=%llu", *size);
			if (proxy_param_append(out, outlen, kv) != 0)
				goto too_long;
		} else if (kl == 4 && strncasecmp(tok, "BODY", 4) == 0 && val != NULL &&
		    (strcasecmp(val, "7BIT") == 0 || strcasecmp(val, "8BITMIME") == 0)) {
			if (proxy_param_append(out, outlen,
			    strcasecmp(val, "7BIT") == 0 ? "BODY=7BIT" :
			    "BODY=8BITMIME") != 0)
				goto too_long;
		} else if (kl == 8 && strncasecmp(tok, "SMTPUTF8", 8) == 0 &&
		    val == NULL) {
			if (proxy_param_append(out, outlen, "SMTPUTF8") != 0)
				goto too_long;
		} else {
			str_fmt(why, whylen, "555 5.5.4 Unsupported option: %.*s",
			    (int)(kl > 40 ? 40 : kl), tok);
			/* Only printable text goes back into a reply. */
			for (char *q = why; *q; q++)
				if ((unsigned char)*q < 0x20 || *q == 0x7f)
					*q = '?';
			return -1;
		}
	}
	return 0;
too_long:
	str_fmt(why, whylen, "555 5.5.4 Parameters too long");
	return -1;
}
