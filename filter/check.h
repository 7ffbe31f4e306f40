/*
 * check.h - `mxwarden check`: evaluate one message offline, exactly as
 * the daemon would, and print the trace (text or JSON).
 */
#ifndef MXW_CHECK_H
#define MXW_CHECK_H

#include <stdio.h>

struct eng;

struct check_args {
	const char	*ip;		/* client address (default 127.0.0.1) */
	int		 port;
	const char	*client_name;	/* MTA's name for the client, or NULL */
	const char	*helo;		/* default: none sent */
	const char	*from;		/* envelope sender; NULL: from the From header */
	const char	*rcpt[64];
	size_t		 nrcpt;
	const char	*auth;		/* authenticated user, or NULL */
	const char	*tls;		/* "VERSION CIPHER" of a TLS session, or NULL */
	int		 json;
};

/*
 * check_run - read a message from in, run it through the engine, print
 * the trace to out. Returns the process exit status: 0 accepted (or
 * quarantined / with spam headers), 1 rejected / discarded, 2
 * tempfailed, 3 bad input (message unreadable or too large).
 */
int	check_run(struct eng *e, const struct check_args *a, FILE *in, FILE *out);

#endif
