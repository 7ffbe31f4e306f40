/*
 * log.c - logging to syslog (facility mail) or to stderr.
 *
 * The level test comes before any formatting. stderr lines are written
 * with one write() each so that lines from several threads never mix.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_stderr = 1;
static enum log_level log_level = LOG_LVL_INFO;
static const char *log_ident = "mxwarden";
static long log_pid;		/* getpid() is a system call each time */

/* log_forked - in a child after fork(): its own PID in its lines. */
static void
log_forked(void)
{
	log_pid = (long)getpid();
}

static void
log_register_fork(void)
{
	(void)pthread_atfork(NULL, NULL, log_forked);
}

void
log_init(const char *ident, int to_stderr, enum log_level level)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	(void)pthread_once(&once, log_register_fork);
	log_pid = (long)getpid();
	log_ident = ident;
	log_stderr = to_stderr;
	log_level = level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_enabled(enum log_level level)
{
	return level <= log_level;
}

static void
log_emit(enum log_level level, const char *fmt, va_list ap, int err)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *tag[] = { "error", "warning", "info", "debug" };
	char msg[2048];
	size_t n;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (err)
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(err));
	if (!log_stderr) {
		syslog(prio[level], "%s", msg);
		return;
	}
	char line[2200];
	int len = snprintf(line, sizeof(line), "%s[%ld]: %s: %s\n", log_ident,
	    log_pid ? log_pid : (long)getpid(), tag[level], msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line)) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, (size_t)len);
	(void)w;
}

#define LOG_FN(fn, lvl)					\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_emit(lvl, fmt, ap, 0);				\
	va_end(ap);						\
}
LOG_FN(log_err, LOG_LVL_ERR)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

void
log_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, fmt, ap, err);
	va_end(ap);
}
