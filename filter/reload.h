/*
 * reload.h - reload the rule set (and the reloadable settings) of a
 * running daemon without a restart.
 *
 * libmilter treats SIGHUP as "stop", so the reload signal is SIGUSR1 in
 * both modes: `mxwarden reload` validates the files and sends SIGUSR1
 * to the pid in pid_file; in the daemon a dedicated thread waits for
 * it (sigwait), parses the config and the rules into a new snapshot
 * and installs it with eng_reload(). A config or rule set with any
 * error is refused whole: every error is logged and the old snapshot
 * stays in force. Transactions in flight finish with the snapshot they
 * started with.
 *
 * Order in the daemon: reload_block() first, before any thread exists
 * (threads inherit the mask, so only the reload thread receives the
 * signal), then reload_start() once the engine exists (after any fork),
 * reload_stop() before the engine is freed.
 */
#ifndef MXW_RELOAD_H
#define MXW_RELOAD_H

#include <stddef.h>

struct eng;

/* reload_block - block SIGUSR1 in the calling thread. */
void	 reload_block(void);
/* reload_start - start the reload thread for e, reloading conf with the
 * -o overrides (copied). 0, or -1 and a reason in err. */
int	 reload_start(struct eng *e, const char *conf, char *const *over,
	    size_t nover, char *err, size_t errlen);
/* reload_stop - stop and join the thread (no-op if not started). */
void	 reload_stop(void);
/* reload_now - the work the thread does on a signal: 0 when the new
 * snapshot is installed, -1 when refused (reasons logged). */
int	 reload_now(struct eng *e, const char *conf, char *const *over,
	    size_t nover);
/* reload_send - `mxwarden reload`: SIGUSR1 to the pid in pid_file.
 * 0, or -1 and a reason in err. */
int	 reload_send(const char *pid_file, char *err, size_t errlen);

#endif
