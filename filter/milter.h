/*
 * milter.h - the milter front end: Postfix (smtpd_milters) and Sendmail
 * (INPUT_MAIL_FILTER) drive the policy engine over libmilter.
 *
 * filter/main.c builds the engine, then calls milter_run(), which blocks
 * until the milter is stopped (SIGTERM or SIGINT, which libmilter
 * catches itself, or milter_stop() from another thread).
 *
 * Note: libmilter also catches SIGHUP and treats it like SIGTERM (it
 * stops); a reload signal for milter mode must be another one.
 */
#ifndef MXW_MILTER_H
#define MXW_MILTER_H

#include <stddef.h>

struct eng;

#define MILTER_BUSY	(-2)

/*
 * milter_run - listen on socket_spec and serve MTA connections until
 * stopped.
 *
 * socket_spec: "inet:PORT@HOST", "inet6:PORT@HOST" or "unix:/path"
 * ("local:/path" too). A stale unix socket (nobody accepts on it) is
 * removed first; one that is in use, or a path that is not a socket,
 * is an error. timeout_s is libmilter's I/O timeout towards the MTA.
 * The engine is borrowed: it must outlive milter_run().
 *
 * At a stop, callbacks already running are waited for (bounded); MTA
 * sessions idle between two commands are dropped and their transactions
 * freed (the MTA then applies its milter_default_action / F= flag).
 *
 * Returns 0 after a clean stop; -1 with a reason in err when the socket
 * could not be opened or libmilter failed; MILTER_BUSY (with a reason)
 * when callbacks were still running after the shutdown wait (30 s):
 * threads may still use the engine, so the caller must exit without
 * eng_free().
 *
 * Only one milter_run() may be active in a process (libmilter keeps
 * global state).
 */
int	milter_run(struct eng *e, const char *socket_spec, int timeout_s,
	    char *err, size_t errlen);

/* milter_stop - ask a running milter_run() to return (async-safe
 * enough for a thread; not for a signal handler). No-op otherwise. */
void	milter_stop(void);

#endif
