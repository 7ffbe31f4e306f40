/*
 * reload.c - the reload thread of the daemon and the sender side of
 * `mxwarden reload` (see reload.h).
 *
 * Called by filter/main.c. Owns one thread and copies of the config
 * path and -o overrides. The thread does nothing but wait for SIGUSR1
 * and reload; a reload runs in this thread only, so two reloads never
 * overlap. Thread safety: eng_reload() swaps the snapshot under the
 * engine's lock; the rest is local to the thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "config.h"
#include "engine.h"
#include "log.h"
#include "reload.h"
#include "rules.h"
#include "util.h"

#define RELOAD_MAX_OVER	64

static struct {
	pthread_t	 tid;
	int		 running;
	struct eng	*eng;
	char		*conf;
	char		*over[RELOAD_MAX_OVER];
	size_t		 nover;
} reload_st;

void
reload_block(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* reload_log_errs - one log line per "file:line: reason" line. */
static void
reload_log_errs(const char *errs)
{
	char *copy = xstrdup(errs), *save = NULL;

	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n",
	    &save))
		log_err("reload: %s", l);
	free(copy);
}

int
reload_now(struct eng *e, const char *conf, char *const *over, size_t nover)
{
	char *errs = xmalloc(65536);
	struct cfg *c = cfg_load(conf, (char **)over, nover, errs, 65536);
	struct rules *r = NULL;

	if (c != NULL &&
	    (r = rules_load(c->rules_file, c->local_rules_file, RULES_JIT, errs,
	    65536)) == NULL) {
		cfg_free(c);
		c = NULL;
	}
	if (c == NULL) {
		reload_log_errs(errs);
		log_err("reload refused: the running configuration and rules stay "
		    "in force");
		free(errs);
		return -1;
	}
	free(errs);
	size_t nrx = rules_rx_count(r);
	eng_reload(e, c, r);
	log_info("reload: new configuration and rules in force (%zu content "
	    "rules)", nrx);
	return 0;
}

static void *
reload_main(void *arg)
{
	sigset_t set;
	int sig;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1)
			reload_now(reload_st.eng, reload_st.conf, reload_st.over,
			    reload_st.nover);
	}
	return NULL;
}

int
reload_start(struct eng *e, const char *conf, char *const *over, size_t nover,
    char *err, size_t errlen)
{
	if (reload_st.running)
		return 0;
	if (nover > RELOAD_MAX_OVER) {
		str_fmt(err, errlen, "too many -o options");
		return -1;
	}
	reload_block();
	reload_st.eng = e;
	reload_st.conf = conf ? xstrdup(conf) : NULL;
	for (size_t i = 0; i < nover; i++)
		reload_st.over[i] = xstrdup(over[i]);
	reload_st.nover = nover;
	/* The thread takes no signal but by sigwait: were SIGTERM open in
	 * it, the kernel could deliver the stop signal there instead of to
	 * libmilter's signal thread, and the default action would kill the
	 * process. It inherits this all-blocked mask. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&reload_st.tid, NULL, reload_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		str_fmt(err, errlen, "reload thread: %s", strerror(rc));
		return -1;
	}
	reload_st.running = 1;
	return 0;
}

void
reload_stop(void)
{
	if (reload_st.running) {
		pthread_cancel(reload_st.tid);	/* sigwait is a cancellation point */
		pthread_join(reload_st.tid, NULL);
		reload_st.running = 0;
	}
	free(reload_st.conf);
	reload_st.conf = NULL;
	for (size_t i = 0; i < reload_st.nover; i++)
		free(reload_st.over[i]);
	reload_st.nover = 0;
}

int
reload_send(const char *pid_file, char *err, size_t errlen)
{
	FILE *fp;
	long pid = 0;

	if (pid_file == NULL || pid_file[0] == '\0') {
		str_fmt(err, errlen, "pid_file is not set in the configuration");
		return -1;
	}
	if ((fp = fopen(pid_file, "r")) == NULL) {
		str_fmt(err, errlen, "%s: %s (is mxwarden running?)", pid_file,
		    strerror(errno));
		return -1;
	}
	if (fscanf(fp, "%ld", &pid) != 1 || pid <= 1) {
		fclose(fp);
		str_fmt(err, errlen, "%s: no process id in the file", pid_file);
		return -1;
	}
	fclose(fp);
	if (kill((pid_t)pid, SIGUSR1) != 0) {
		str_fmt(err, errlen, "signal process %ld: %s", pid, strerror(errno));
		return -1;
	}
	return 0;
}
