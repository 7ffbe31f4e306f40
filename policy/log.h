/*
 * log.h - logging to syslog or stderr.
 *
 * log_init() is called once at start-up, before any thread exists; the
 * log functions are thread-safe afterwards. Each line should carry the
 * session id and the client "[ip]:port" where one is known; protocol
 * anomalies use UPPER-case tags so they can be grepped.
 */
#ifndef MXW_LOG_H
#define MXW_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* log_init - to_stderr non-zero logs to stderr, else to syslog (mail). */
void	log_init(const char *ident, int to_stderr, enum log_level level);
void	log_set_level(enum log_level level);
int	log_enabled(enum log_level level);

void	log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_errno - log_err with ": strerror(errno)" appended. */
void	log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
