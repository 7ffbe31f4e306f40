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
 * Returns 0 after a clean stop (every MTA session closed), or -1 with a
 * reason in err: the socket could not be opened, libmilter failed, or
 * sessions were still running when the shutdown wait ran out. In the
 * last case threads may still use the engine: the caller must exit
 * without eng_free().
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
