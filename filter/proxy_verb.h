/*
 * proxy_verb.h - the SMTP proxy's session states, its verb table and the
 * parsers for command arguments (MAIL/RCPT paths, ESMTP parameters).
 *
 * Pure functions over strings: no I/O, no engine. proxy_session.c looks
 * every command up here, checks the state, then runs its handler.
 */
#ifndef MXW_PROXY_VERB_H
#define MXW_PROXY_VERB_H

#include <stddef.h>

enum proxy_state {
	PS_CONNECT,	/* accepted; engine and backend not asked yet */
	PS_GREET,	/* banner sent, no HELO/EHLO yet */
	PS_READY,	/* HELO/EHLO done, no transaction */
	PS_MAIL,	/* MAIL accepted by the backend */
	PS_RCPT,	/* at least one RCPT accepted */
	PS_DATA,	/* receiving the message */
	PS_REJECTED,	/* refused at connect: everything but QUIT is refused */
	PS_CLOSING,	/* QUIT, error or shutdown: no more commands */
};
#define PS_BIT(s)	(1u << (s))
#define PS_ANY_SMTP	(PS_BIT(PS_GREET) | PS_BIT(PS_READY) | PS_BIT(PS_MAIL) | \
			 PS_BIT(PS_RCPT))

const char	*proxy_state_name(enum proxy_state s);

enum proxy_verb_id {
	PV_HELO, PV_EHLO, PV_MAIL, PV_RCPT, PV_DATA, PV_RSET, PV_NOOP,
	PV_QUIT, PV_HELP, PV_VRFY, PV_EXPN, PV_STARTTLS, PV_AUTH, PV_BDAT,
	PV_NON_SMTP,	/* HTTP and proxy verbs: a zombie or a scanner */
	PV_UNKNOWN,
};

/* Verb flags. */
#define PVF_ARG_NEEDED	0x01	/* "501 Syntax" without an argument */
#define PVF_ARG_NONE	0x02	/* "501 Syntax" with an argument */
#define PVF_RELAY	0x04	/* passed on to the backend */
#define PVF_BEFORE_TLS	0x08	/* allowed before STARTTLS when TLS is required */

struct proxy_verb {
	const char		*name;
	enum proxy_verb_id	 id;
	unsigned		 states;	/* PS_BIT()s where it is allowed */
	unsigned		 flags;
	const char		*bad_state;	/* reply when not allowed */
};

/*
 * proxy_verb_lookup - the table entry for a command line (the verb is
 * the text up to the first space, compared without case); the entry for
 * PV_UNKNOWN when none matches. *arg points into line at the argument
 * (leading spaces skipped; "" when none). Never NULL.
 */
const struct proxy_verb *proxy_verb_lookup(const char *line, const char **arg);

/* proxy_verb_allowed - non-zero when v may be used in state s. */
int	proxy_verb_allowed(const struct proxy_verb *v, enum proxy_state s);

#define PROXY_PATH_MAX	256	/* RFC 5321 §4.5.3.1.3, without <> */

/*
 * proxy_parse_path - parse "FROM:<addr> params" (kw "FROM:") or
 * "TO:<addr> params" (kw "TO:"): keyword without case, optional spaces,
 * an address in angle brackets (quoted local parts allowed), then
 * parameters. addr gets the address without <> ("" for <>), *params
 * points at the parameters ("" when none). Returns 0, or -1 with a reply
 * text (without code) in why.
 */
int	proxy_parse_path(const char *arg, const char *kw, char *addr,
	    size_t addrlen, const char **params, char *why, size_t whylen);

/*
 * proxy_mail_params - check MAIL parameters: only SIZE=n, BODY=7BIT|
 * 8BITMIME and SMTPUTF8 (what the proxy advertises). *size gets SIZE or
 * 0. out gets them normalised ("" when none), ready to relay. Returns 0,
 * or -1 with a reply ("555 5.5.4 ...", code included) in why.
 */
int	proxy_mail_params(const char *params, unsigned long long *size,
	    char *out, size_t outlen, char *why, size_t whylen);

#endif
