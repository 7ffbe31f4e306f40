/*
 * store.h - the state store (SQLite by default).
 *
 * The interface is small so that another store (shared by a fleet of MX
 * hosts) can stand behind it later. The checks (relay, harvest,
 * ratelimit, greylist) use only three storage operations:
 *
 *   store_count   increment a counter and read it, within a window
 *   store_set     set an entry, with an expiry
 *   store_get     look an entry up
 *
 * plus store_del / store_list / store_prune / store_vacuum for the admin
 * CLI (`mxwarden db`). Every call takes the current time "now" (unix
 * seconds) from the caller, so that tests can move the clock.
 *
 * Opened after privileges are dropped. Safe for many threads (one
 * connection under a mutex) and for several mxwarden processes sharing
 * one file: WAL mode, a busy timeout, and every change is one statement
 * (atomic: no increment is lost between processes). Expired rows are
 * removed in small batches as a side effect of the write calls, so the
 * filter never stops for a clean-up.
 *
 * A failing store never ends the process: calls return -1 after a log
 * line (at most one per STORE_LOG_EVERY seconds for the same kind of
 * failure: locked, read-only, full, corrupt) and the caller applies
 * on_db_error. After a failure that a new connection may cure (the
 * file was replaced, corrupt or unreadable) the store reopens the file
 * before the next call, at most once every few seconds.
 */
#ifndef MXW_STORE_H
#define MXW_STORE_H

#include <stddef.h>
#include <time.h>

struct store;
struct txn;

/* store_open - open or create the database and apply migrations.
 * NULL + reason on failure (unwritable, corrupt, newer schema). */
struct store	*store_open(const char *path, char *err, size_t errlen);
/*
 * store_open_retry - for the daemons: like store_open, but when the
 * database cannot be opened now the store is returned anyway, without
 * a connection. Its calls then fail (-1: the checks apply on_db_error)
 * and try to open the file again, at most once every few seconds, so
 * the filter recovers on its own when the database is back. *opened is
 * 1 when the database was opened now, 0 (reason in err) when not.
 */
struct store	*store_open_retry(const char *path, char *err, size_t errlen,
		    int *opened);
void		 store_close(struct store *s);

/*
 * store_batch_begin / store_batch_end - group the writes of one stage
 * into one transaction (one commit instead of one per counter). The
 * calling thread holds the store in between; the calls of the batch
 * work as usual. If the transaction cannot start (locked), the writes
 * commit one by one. s may be NULL.
 */
void		 store_batch_begin(struct store *s);
void		 store_batch_end(struct store *s);

/* store_set_busy_ms - how long a call waits for a lock held by another
 * connection before it fails (default 2000 ms). */
void		 store_set_busy_ms(struct store *s, int ms);

/* store_schema_version - the version the database is at (-1: error). */
int		 store_schema_version(struct store *s);
/* store_schema_known - the newest version this binary knows. */
int		 store_schema_known(void);

/* store_history_add - record a finished transaction: queued, and
 * committed by the store's writer thread within STORE_HIST_DELAY_MS
 * (100 ms), with the other rows of that time. 0, or -1 when the row
 * was dropped (the queue is full or the writer could not start). */
int		 store_history_add(struct store *s, const struct txn *t,
		    const char *action);

/*
 * store_count - add delta (>= 0) to the counter (kind, key) and put the
 * new value in *count. A counter's window starts at its first event and
 * lasts window seconds; the first increment after it starts a new one.
 * delta 0 only reads (0 when absent or expired). One statement: atomic
 * across threads and processes. 0 or -1.
 */
int		 store_count(struct store *s, const char *kind, const char *key,
		    long window, long delta, time_t now, long *count);

/* store_set - create or replace the entry (kind, key) with value;
 * expires is a unix time, 0 for never. 0 or -1. */
int		 store_set(struct store *s, const char *kind, const char *key,
		    const char *value, time_t now, time_t expires);

/*
 * store_get - look up an unexpired entry. Returns 1 (found: value,
 * created and expires filled where not NULL), 0 (absent or expired) or
 * -1 (error).
 */
int		 store_get(struct store *s, const char *kind, const char *key,
		    time_t now, char *value, size_t vlen, time_t *created,
		    time_t *expires);

/* store_del - delete the entry (kind, key) and the counter of that
 * name: the number of rows removed, or -1. */
int		 store_del(struct store *s, const char *kind, const char *key);

/* A row for store_list: a counter (count >= 0, value NULL) or an entry
 * (count -1). */
struct store_row {
	const char	*kind;
	const char	*key;
	const char	*value;
	long		 count;
	time_t		 created;	/* entry: created; counter: window start */
	time_t		 expires;
};
/* store_list - call fn for every unexpired row whose kind is kind or
 * starts with kind_prefix (when kind ends in '*'). fn returns non-zero
 * to stop. 0 or -1. */
int		 store_list(struct store *s, const char *kind, time_t now,
		    int (*fn)(const struct store_row *row, void *arg), void *arg);
/* store_list_keys - the unexpired entries of kind that may apply to a
 * client: those whose key is one of keys (up to 3; NULL: none), in the
 * order of keys, then those whose key is a network (has '/'), in key
 * order. No other entry of the kind is read. 0 or -1. */
int		 store_list_keys(struct store *s, const char *kind,
		    const char *const keys[3], time_t now,
		    int (*fn)(const struct store_row *row, void *arg), void *arg);

/* store_prune - remove every expired row and history older than
 * history_keep seconds (0: keep all). Rows removed, or -1. */
long		 store_prune(struct store *s, time_t now, long history_keep);
/* store_vacuum - give the free pages back to the file system. 0 or -1. */
int		 store_vacuum(struct store *s);

/* store_stats - row counts for `mxwarden db stats`. 0 or -1. */
struct store_stats {
	long	 counters;
	long	 entries;
	long	 history;
	long	 pages;
	long	 page_size;
};
int		 store_stats(struct store *s, struct store_stats *st);

#endif
