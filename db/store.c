/*
 * store.c - SQLite implementation of the state store (see store.h).
 *
 * The schema lives in db/migrations/NNN.sql, compiled in by the build as
 * store_migrations[] and applied in order (PRAGMA user_version is the
 * number applied). WAL mode and a busy timeout let several processes
 * share the file; every change is one statement, so increments are
 * atomic. A mutex serialises use of the one connection; the prepared
 * statements live with it. Called by the engine's checks (relay,
 * harvest, ratelimit, greylist), the history recorder and `mxwarden db`.
 *
 * History rows are not written by the transaction that made them: they
 * are queued and a writer thread of the store's own commits them in
 * batches (one commit per STORE_HIST_DELAY_MS at most, instead of one
 * per message). A crash loses at most that much history; store_close
 * and store_stats write what is queued first.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "store.h"
#include "txn.h"
#include "util.h"

#define STORE_BUSY_MS		2000
#define STORE_LOG_EVERY		10	/* seconds between like failure logs */
#define STORE_REOPEN_EVERY	5	/* seconds between reopen attempts */
#define STORE_PRUNE_EVERY	60	/* seconds between batch prunes */
#define STORE_PRUNE_BATCH	500	/* rows per table per batch prune */
#define STORE_HIST_DELAY_MS	100	/* a queued history row waits at most */
#define STORE_HIST_BATCH	256	/* rows that start a commit at once */
#define STORE_HIST_MAX		20000	/* queued rows; more are dropped */

/* A history row waiting for the writer: the strings follow the struct. */
struct store_hrow {
	struct store_hrow *next;
	long long	 ts;
	const char	*client_ip, *helo, *mail_from, *action, *symbols;
	int		 rcpt_count;
	double		 score;
};

enum store_stmt {
	ST_HISTORY, ST_COUNT_ADD, ST_COUNT_READ, ST_SET, ST_GET, ST_DEL_ENTRY,
	ST_DEL_COUNTER, ST_PRUNE_COUNTERS, ST_PRUNE_ENTRIES, ST_LIST_ENTRIES,
	ST_LIST_COUNTERS, ST_LIST_ENTRIES_PFX, ST_LIST_COUNTERS_PFX, ST_LIST_KEYS,
	ST_BEGIN,
	ST_COMMIT, ST_ROLLBACK, ST_COUNT
};

/* one entry of kind ?1 unexpired at ?2, by its key (what follows) */
#define STORE_KEY_ROW "SELECT kind, key, value, created, expires FROM " \
	"entries WHERE kind = ?1 AND (expires = 0 OR expires > ?2) AND key = "

static const char *const store_sql[ST_COUNT] = {
	[ST_HISTORY] = "INSERT INTO history (ts, client_ip, helo, mail_from, "
	    "rcpt_count, action, score, symbols) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	/* ?1 kind ?2 key ?3 now ?4 delta ?5 window. In an UPDATE every
	 * expression sees the old row, so the three CASEs agree. */
	[ST_COUNT_ADD] = "INSERT INTO counters (kind, key, start, count, expires) "
	    "VALUES (?1, ?2, ?3, ?4, ?3 + ?5) ON CONFLICT (kind, key) DO UPDATE SET "
	    "count = CASE WHEN expires <= ?3 THEN ?4 ELSE count + ?4 END, "
	    "start = CASE WHEN expires <= ?3 THEN ?3 ELSE start END, "
	    "expires = CASE WHEN expires <= ?3 THEN ?3 + ?5 ELSE expires END "
	    "RETURNING count",
	[ST_COUNT_READ] = "SELECT count FROM counters WHERE kind = ?1 AND "
	    "key = ?2 AND expires > ?3",
	[ST_SET] = "INSERT OR REPLACE INTO entries (kind, key, value, created, "
	    "expires) VALUES (?, ?, ?, ?, ?)",
	[ST_GET] = "SELECT value, created, expires FROM entries WHERE kind = ?1 "
	    "AND key = ?2 AND (expires = 0 OR expires > ?3)",
	[ST_DEL_ENTRY] = "DELETE FROM entries WHERE kind = ? AND key = ?",
	[ST_DEL_COUNTER] = "DELETE FROM counters WHERE kind = ? AND key = ?",
	[ST_PRUNE_COUNTERS] = "DELETE FROM counters WHERE (kind, key) IN "
	    "(SELECT kind, key FROM counters WHERE expires <= ?1 LIMIT ?2)",
	[ST_PRUNE_ENTRIES] = "DELETE FROM entries WHERE (kind, key) IN "
	    "(SELECT kind, key FROM entries WHERE expires > 0 AND "
	    "expires <= ?1 LIMIT ?2)",
	/* Listings (store_list, `mxwarden db list`): ?1 kind or prefix,
	 * ?2 now. Columns: kind, key, value or count, created or window
	 * start, expires. An exact kind is a range of the primary key; a
	 * prefix scans. */
	[ST_LIST_ENTRIES] = "SELECT kind, key, value, created, expires FROM "
	    "entries WHERE kind = ?1 AND (expires = 0 OR expires > ?2) "
	    "ORDER BY kind, key",
	[ST_LIST_COUNTERS] = "SELECT kind, key, count, start, expires FROM "
	    "counters WHERE kind = ?1 AND expires > ?2 ORDER BY kind, key",
	[ST_LIST_ENTRIES_PFX] = "SELECT kind, key, value, created, expires FROM "
	    "entries WHERE substr(kind, 1, length(?1)) = ?1 AND "
	    "(expires = 0 OR expires > ?2) ORDER BY kind, key",
	[ST_LIST_COUNTERS_PFX] = "SELECT kind, key, count, start, expires FROM "
	    "counters WHERE substr(kind, 1, length(?1)) = ?1 AND expires > ?2 "
	    "ORDER BY kind, key",
	/* store_list_keys: ?3 ?4 ?5 the keys (NULL: none). Their entries
	 * by the primary key, in that order (three point lookups, not
	 * key IN (...): an IN list is made into a temporary table at every
	 * run), then the networks through their index (migration 3;
	 * INDEXED BY makes a plan that would read every entry of the kind
	 * an error). */
	[ST_LIST_KEYS] = STORE_KEY_ROW "?3 UNION ALL " STORE_KEY_ROW "?4 "
	    "UNION ALL " STORE_KEY_ROW "?5 UNION ALL SELECT * FROM (SELECT "
	    "kind, key, value, created, expires FROM entries INDEXED BY "
	    "entries_nets WHERE kind = ?1 AND instr(key, '/') > 0 AND "
	    "(expires = 0 OR expires > ?2) ORDER BY kind, key)",
	/* store_batch_begin/end, several times per message */
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

struct store {
	char		*path;
	sqlite3		*db;		/* NULL while it must be reopened */
	pthread_mutex_t	 lock;
	sqlite3_stmt	*st[ST_COUNT];
	int		 busy_ms;
	time_t		 last_prune;
	time_t		 last_reopen;
	time_t		 last_log[5];	/* per failure class */
	int		 batch;		/* inside store_batch_begin/end */
	struct {			/* the history queue, under its lock */
		pthread_mutex_t	 lock;
		pthread_cond_t	 cv;
		struct store_hrow *head, **tail;
		size_t		 n;
		long		 dropped;
		pthread_t	 tid;
		int		 started, stop;
	} hq;
};

static void store_fail(struct store *s, const char *what, int rc);
static void store_lock_init(struct store *s);
static void store_hist_stop(struct store *s);
static void store_hist_flush(struct store *s);
static int store_step_done(sqlite3_stmt *st);

static const char *const store_migrations[] = {
#include "migrations.h"
};

int
store_schema_known(void)
{
	return (int)ARRAY_LEN(store_migrations);
}

static int
store_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		str_fmt(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
store_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}

int
store_schema_version(struct store *s)
{
	int v = -1;

	pthread_mutex_lock(&s->lock);
	if (s->db != NULL)
		v = store_version(s->db);
	pthread_mutex_unlock(&s->lock);
	return v;
}

/* store_migrate - bring the schema to the newest version we know. The
 * version is read again inside the write transaction: two processes
 * starting together do not both apply a migration. */
static int
store_migrate(sqlite3 *db, char *err, size_t errlen)
{
	int want = store_schema_known();

	/* Up to date: no write lock needed (another process may hold it). */
	if (store_version(db) == want)
		return 0;
	for (;;) {
		char sql[64], ignore[8];
		if (store_exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
			return -1;
		int have = store_version(db);
		if (have < 0) {
			str_fmt(err, errlen, "cannot read the schema version: %s",
			    sqlite3_errmsg(db));
			store_exec(db, "ROLLBACK", ignore, sizeof(ignore));
			return -1;
		}
		if (have > want) {
			str_fmt(err, errlen, "database schema version %d is newer "
			    "than this mxwarden knows (%d): refusing to touch it",
			    have, want);
			store_exec(db, "ROLLBACK", ignore, sizeof(ignore));
			return -1;
		}
		if (have == want)
			return store_exec(db, "COMMIT", err, errlen);
		str_fmt(sql, sizeof(sql), "PRAGMA user_version = %d", have + 1);
		if (store_exec(db, store_migrations[have], err, errlen) != 0 ||
		    store_exec(db, sql, err, errlen) != 0) {
			store_exec(db, "ROLLBACK", ignore, sizeof(ignore));
			return -1;
		}
		if (store_exec(db, "COMMIT", err, errlen) != 0)
			return -1;
		log_info("database: schema migrated to version %d", have + 1);
	}
}

static void
store_disconnect(struct store *s)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->st[i]);
		s->st[i] = NULL;
	}
	sqlite3_close(s->db);
	s->db = NULL;
}

/* store_connect - open the file, migrate, prepare. Caller holds the
 * lock (or owns s alone). */
static int
store_connect(struct store *s, char *err, size_t errlen)
{
	char why[256];
	int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		str_fmt(err, errlen, "%s: %s", s->path, s->db ?
		    sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		store_disconnect(s);
		return -1;
	}
	sqlite3_busy_timeout(s->db, s->busy_ms);
	sqlite3_extended_result_codes(s->db, 1);
	if (store_exec(s->db, "PRAGMA journal_mode = WAL", why, sizeof(why)) != 0 ||
	    store_exec(s->db, "PRAGMA synchronous = NORMAL", why, sizeof(why)) != 0 ||
	    store_migrate(s->db, why, sizeof(why)) != 0) {
		str_fmt(err, errlen, "%s: %s", s->path, why);
		store_disconnect(s);
		return -1;
	}
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, store_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
			str_fmt(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
			store_disconnect(s);
			return -1;
		}
	return 0;
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store *s = xcalloc(1, sizeof(*s));

	store_lock_init(s);
	s->path = xstrdup(path);
	s->busy_ms = STORE_BUSY_MS;
	if (store_connect(s, err, errlen) != 0) {
		store_close(s);
		return NULL;
	}
	return s;
}

/* store_lock_init - recursive: store_batch_begin() holds the lock while
 * the calls of the batch take it again. */
static void
store_lock_init(struct store *s)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->lock, &a);
	pthread_mutexattr_destroy(&a);
	pthread_mutex_init(&s->hq.lock, NULL);
	pthread_cond_init(&s->hq.cv, NULL);
	s->hq.tail = &s->hq.head;
}

struct store *
store_open_retry(const char *path, char *err, size_t errlen, int *opened)
{
	struct store *s = xcalloc(1, sizeof(*s));

	store_lock_init(s);
	s->path = xstrdup(path);
	s->busy_ms = STORE_BUSY_MS;
	*opened = store_connect(s, err, errlen) == 0;
	if (!*opened)
		s->last_reopen = time(NULL);
	return s;
}

void
store_batch_begin(struct store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->batch = s->db != NULL && store_step_done(s->st[ST_BEGIN]) == SQLITE_DONE;
}

void
store_batch_end(struct store *s)
{
	if (s == NULL)
		return;
	/* The connection may have been reopened after a failure inside
	 * the batch: commit only a transaction that is still open. */
	if (s->batch && s->db != NULL && !sqlite3_get_autocommit(s->db)) {
		int rc = store_step_done(s->st[ST_COMMIT]);
		if (rc != SQLITE_DONE) {
			store_fail(s, "batch commit", rc);
			if (s->db != NULL && !sqlite3_get_autocommit(s->db))
				store_step_done(s->st[ST_ROLLBACK]);
		}
	}
	s->batch = 0;
	pthread_mutex_unlock(&s->lock);
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_hist_stop(s);
	store_hist_flush(s);
	store_disconnect(s);
	pthread_mutex_destroy(&s->hq.lock);
	pthread_cond_destroy(&s->hq.cv);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

void
store_set_busy_ms(struct store *s, int ms)
{
	pthread_mutex_lock(&s->lock);
	s->busy_ms = ms;
	if (s->db != NULL)
		sqlite3_busy_timeout(s->db, ms);
	pthread_mutex_unlock(&s->lock);
}

/*
 * store_fail - log a failed call (rate-limited per class) and decide
 * whether the connection should be reopened. Caller holds the lock.
 */
static void
store_fail(struct store *s, const char *what, int rc)
{
	static const char *const cls_name[] = { "locked (busy timeout passed)",
		"read-only", "disk full", "corrupt", "failed" };
	int cls, reopen = 0;
	time_t now = time(NULL);

	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED:	cls = 0; break;
	case SQLITE_READONLY:
		/* A connection SQLite opened read-only (the file or its
		 * directory was not writable) stays so: reopen it. */
		cls = 1;
		reopen = rc != SQLITE_READONLY || (s->db != NULL &&
		    sqlite3_db_readonly(s->db, "main") == 1);
		break;
	case SQLITE_FULL:	cls = 2; break;
	case SQLITE_CORRUPT: case SQLITE_NOTADB: cls = 3; reopen = 1; break;
	case SQLITE_IOERR: case SQLITE_CANTOPEN: cls = 4; reopen = 1; break;
	default:		cls = 4; break;
	}
	if (now - s->last_log[cls] >= STORE_LOG_EVERY) {
		s->last_log[cls] = now;
		log_warn("database %s: %s %s: %s", s->path, what, cls_name[cls],
		    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	}
	if (reopen && s->db != NULL)
		store_disconnect(s);
}

/* store_ready - lock s and make sure it has a connection. 0, or -1 with
 * the lock released. */
static int
store_ready(struct store *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->db != NULL)
		return 0;
	time_t now = time(NULL);
	if (now - s->last_reopen >= STORE_REOPEN_EVERY) {
		char err[512];
		s->last_reopen = now;
		if (store_connect(s, err, sizeof(err)) == 0) {
			log_info("database %s: reopened", s->path);
			return 0;
		}
		log_warn("database: cannot reopen: %s", err);
	}
	pthread_mutex_unlock(&s->lock);
	return -1;
}

static void
store_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* store_step_done - run a statement without rows or parameters (BEGIN,
 * COMMIT...) and reset it; the result of the step. */
static int
store_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/* store_prune_batch - remove a bounded batch of expired rows. Caller
 * holds the lock. Rows removed, or -1. */
static long
store_prune_batch(struct store *s, time_t now, int limit)
{
	long n = 0;

	for (int i = ST_PRUNE_COUNTERS; i <= ST_PRUNE_ENTRIES && s->db; i++) {
		sqlite3_stmt *st = s->st[i];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
		sqlite3_bind_int(st, 2, limit);
		int rc = sqlite3_step(st);
		store_done(st);
		if (rc != SQLITE_DONE) {
			store_fail(s, "prune", rc);
			return -1;
		}
		n += sqlite3_changes(s->db);
	}
	return n;
}

/* store_maybe_prune - the background expiry: one bounded batch per
 * STORE_PRUNE_EVERY seconds, piggy-backed on a write. */
static void
store_maybe_prune(struct store *s, time_t now)
{
	if (now - s->last_prune < STORE_PRUNE_EVERY && now >= s->last_prune)
		return;
	s->last_prune = now;
	store_prune_batch(s, now, STORE_PRUNE_BATCH);
}

/* store_hist_take - the queued rows, the queue emptied. */
static struct store_hrow *
store_hist_take(struct store *s)
{
	pthread_mutex_lock(&s->hq.lock);
	struct store_hrow *list = s->hq.head;
	s->hq.head = NULL;
	s->hq.tail = &s->hq.head;
	s->hq.n = 0;
	pthread_mutex_unlock(&s->hq.lock);
	return list;
}

/*
 * store_hist_flush - commit the queued rows in one transaction, in the
 * caller's thread (the writer's, store_close's, store_stats'). The rows
 * are taken with the store's lock held, so that once another thread
 * holds that lock no row taken from the queue is still uncommitted.
 * Rows the database refuses, or all when there is none, are lost (and
 * logged by store_fail or store_ready).
 */
static void
store_hist_flush(struct store *s)
{
	struct store_hrow *list, *r, *next;
	int rc = SQLITE_DONE;

	int ready = store_ready(s) == 0;	/* the lock, when 1 */

	list = store_hist_take(s);
	if (ready) {
		store_batch_begin(s);
		sqlite3_stmt *st = s->st[ST_HISTORY];
		for (r = list; r != NULL && rc == SQLITE_DONE && s->db != NULL;
		    r = r->next) {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)r->ts);
			sqlite3_bind_text(st, 2, r->client_ip, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, r->helo, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, r->mail_from, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 5, r->rcpt_count);
			sqlite3_bind_text(st, 6, r->action, -1, SQLITE_STATIC);
			sqlite3_bind_double(st, 7, r->score);
			sqlite3_bind_text(st, 8, r->symbols, -1, SQLITE_STATIC);
			rc = sqlite3_step(st);
			store_done(st);
		}
		if (rc != SQLITE_DONE)
			store_fail(s, "history insert", rc);
		store_batch_end(s);
		pthread_mutex_unlock(&s->lock);
	}
	for (r = list; r != NULL; r = next) {
		next = r->next;
		free(r);
	}
}

/* store_hist_main - the writer: waits for a first row, lets more come
 * for up to STORE_HIST_DELAY_MS (or until a batch is full), commits
 * them together. */
static void *
store_hist_main(void *arg)
{
	struct store *s = arg;
	struct timespec until;

	pthread_mutex_lock(&s->hq.lock);
	while (!s->hq.stop) {
		if (s->hq.n == 0) {
			pthread_cond_wait(&s->hq.cv, &s->hq.lock);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += STORE_HIST_DELAY_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!s->hq.stop && s->hq.n < STORE_HIST_BATCH &&
		    pthread_cond_timedwait(&s->hq.cv, &s->hq.lock, &until) == 0)
			;
		pthread_mutex_unlock(&s->hq.lock);
		store_hist_flush(s);
		pthread_mutex_lock(&s->hq.lock);
	}
	pthread_mutex_unlock(&s->hq.lock);
	return NULL;
}

/* store_hist_stop - end the writer (what is still queued stays). */
static void
store_hist_stop(struct store *s)
{
	pthread_mutex_lock(&s->hq.lock);
	int started = s->hq.started;
	s->hq.stop = 1;
	s->hq.started = 0;
	pthread_cond_signal(&s->hq.cv);
	pthread_mutex_unlock(&s->hq.lock);
	if (started)
		pthread_join(s->hq.tid, NULL);
}

/* store_hist_copy - copy str (NULL: "") to *at, advance *at. */
static const char *
store_hist_copy(char **at, const char *str)
{
	char *p = *at;
	size_t n = strlen(str ? str : "") + 1;

	memcpy(p, str ? str : "", n);
	*at = p + n;
	return p;
}

int
store_history_add(struct store *s, const struct txn *t, const char *action)
{
	struct buf syms;
	struct store_hrow *r;
	size_t need;
	char *at;
	int queued = 0;

	buf_init(&syms, 8192);
	for (size_t i = 0; i < t->nsym; i++)
		buf_printf(&syms, "%s%s", i ? "," : "", t->sym[i].name);
	const char *sym = syms.data ? syms.data : "";
	need = sizeof(*r) + strlen(t->client_ip ? t->client_ip : "") +
	    strlen(t->helo ? t->helo : "") +
	    strlen(t->mail_from ? t->mail_from : "") + strlen(action) +
	    strlen(sym) + 5;
	r = xmalloc(need);
	at = (char *)(r + 1);
	r->next = NULL;
	r->ts = (long long)time(NULL);
	r->client_ip = store_hist_copy(&at, t->client_ip);
	r->helo = store_hist_copy(&at, t->helo);
	r->mail_from = store_hist_copy(&at, t->mail_from);
	r->action = store_hist_copy(&at, action);
	r->symbols = store_hist_copy(&at, sym);
	r->rcpt_count = (int)t->nrcpt;
	r->score = t->score;
	buf_free(&syms);

	pthread_mutex_lock(&s->hq.lock);
	if (!s->hq.started && !s->hq.stop &&
	    pthread_create(&s->hq.tid, NULL, store_hist_main, s) == 0)
		s->hq.started = 1;
	if (s->hq.started && s->hq.n < STORE_HIST_MAX) {
		*s->hq.tail = r;
		s->hq.tail = &r->next;
		if (++s->hq.n == 1 || s->hq.n == STORE_HIST_BATCH)
			pthread_cond_signal(&s->hq.cv);
		queued = 1;
	}
	if (!queued && s->hq.dropped++ % 1000 == 0)
		log_warn("database %s: history writer %s: row dropped (%ld so"
		    " far)", s->path, s->hq.started ? "behind" : "not running",
		    s->hq.dropped);
	pthread_mutex_unlock(&s->hq.lock);
	if (!queued)
		free(r);
	return queued ? 0 : -1;
}

int
store_count(struct store *s, const char *kind, const char *key, long window,
    long delta, time_t now, long *count)
{
	int rc, ret = -1;

	*count = 0;
	if (store_ready(s) != 0)
		return -1;
	sqlite3_stmt *st = s->st[delta > 0 ? ST_COUNT_ADD : ST_COUNT_READ];
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	if (delta > 0) {
		sqlite3_bind_int64(st, 4, delta);
		sqlite3_bind_int64(st, 5, window > 0 ? window : 1);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = (long)sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	if (rc == SQLITE_DONE)
		ret = 0;
	store_done(st);
	if (ret != 0)
		store_fail(s, "counter update", rc);
	else if (delta > 0)
		store_maybe_prune(s, now);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int
store_set(struct store *s, const char *kind, const char *key,
    const char *value, time_t now, time_t expires)
{
	int rc;

	if (store_ready(s) != 0)
		return -1;
	sqlite3_stmt *st = s->st[ST_SET];
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value ? value : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)expires);
	rc = sqlite3_step(st);
	store_done(st);
	if (rc != SQLITE_DONE)
		store_fail(s, "entry update", rc);
	else
		store_maybe_prune(s, now);
	pthread_mutex_unlock(&s->lock);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_get(struct store *s, const char *kind, const char *key, time_t now,
    char *value, size_t vlen, time_t *created, time_t *expires)
{
	int rc, ret = -1;

	if (store_ready(s) != 0)
		return -1;
	sqlite3_stmt *st = s->st[ST_GET];
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		if (value != NULL && vlen > 0)
			str_copy(value, v ? (const char *)v : "", vlen);
		if (created != NULL)
			*created = (time_t)sqlite3_column_int64(st, 1);
		if (expires != NULL)
			*expires = (time_t)sqlite3_column_int64(st, 2);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	}
	store_done(st);
	if (ret < 0)
		store_fail(s, "lookup", rc);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int
store_del(struct store *s, const char *kind, const char *key)
{
	int n = 0;

	if (store_ready(s) != 0)
		return -1;
	for (int i = ST_DEL_ENTRY; i <= ST_DEL_COUNTER; i++) {
		sqlite3_stmt *st = s->st[i];
		sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		store_done(st);
		if (rc != SQLITE_DONE) {
			store_fail(s, "delete", rc);
			pthread_mutex_unlock(&s->lock);
			return -1;
		}
		n += sqlite3_changes(s->db);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* store_list_query - run one listing query (a prepared statement of
 * store_sql); caller holds the lock. The callback must not list again. */
static int
store_list_query(struct store *s, enum store_stmt which, const char *kind,
    size_t klen, time_t now, int (*fn)(const struct store_row *, void *),
    void *arg, int *stop)
{
	sqlite3_stmt *st = s->st[which];
	int rc = SQLITE_DONE, entries = which != ST_LIST_COUNTERS &&
	    which != ST_LIST_COUNTERS_PFX;

	sqlite3_bind_text(st, 1, kind, (int)klen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	while (!*stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_row r = {
			.kind = (const char *)sqlite3_column_text(st, 0),
			.key = (const char *)sqlite3_column_text(st, 1),
			.value = entries ? (const char *)sqlite3_column_text(st, 2) :
			    NULL,
			.count = entries ? -1 : (long)sqlite3_column_int64(st, 2),
			.created = (time_t)sqlite3_column_int64(st, 3),
			.expires = (time_t)sqlite3_column_int64(st, 4),
		};
		*stop = fn(&r, arg) != 0;
	}
	store_done(st);
	if (!*stop && rc != SQLITE_DONE) {
		store_fail(s, "list", rc);
		return -1;
	}
	return 0;
}

int
store_list(struct store *s, const char *kind, time_t now,
    int (*fn)(const struct store_row *row, void *arg), void *arg)
{
	size_t klen = strlen(kind);
	int stop = 0, rc, prefix = klen > 0 && kind[klen - 1] == '*';

	if (prefix)
		klen--;
	if (store_ready(s) != 0)
		return -1;
	rc = store_list_query(s, prefix ? ST_LIST_ENTRIES_PFX : ST_LIST_ENTRIES,
	    kind, klen, now, fn, arg, &stop);
	if (rc == 0 && !stop && s->db != NULL)
		rc = store_list_query(s, prefix ? ST_LIST_COUNTERS_PFX :
		    ST_LIST_COUNTERS, kind, klen, now, fn, arg, &stop);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
store_list_keys(struct store *s, const char *kind, const char *const keys[3],
    time_t now, int (*fn)(const struct store_row *row, void *arg), void *arg)
{
	sqlite3_stmt *st = s->st[ST_LIST_KEYS];
	int stop = 0, rc;

	if (store_ready(s) != 0)
		return -1;
	for (int i = 0; i < 3; i++)
		sqlite3_bind_text(st, 3 + i, keys[i], -1, SQLITE_STATIC);
	rc = store_list_query(s, ST_LIST_KEYS, kind, strlen(kind), now, fn, arg,
	    &stop);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

long
store_prune(struct store *s, time_t now, long history_keep)
{
	long total = 0, n;

	if (store_ready(s) != 0)
		return -1;
	/* Batches keep each write transaction short; bounded in count. */
	for (int i = 0; i < 100000; i++) {
		if ((n = store_prune_batch(s, now, 5000)) < 0) {
			pthread_mutex_unlock(&s->lock);
			return -1;
		}
		total += n;
		if (n == 0)
			break;
	}
	if (history_keep > 0 && s->db != NULL) {
		char sql[128];
		char err[256];
		str_fmt(sql, sizeof(sql), "DELETE FROM history WHERE ts < %lld",
		    (long long)now - history_keep);
		if (store_exec(s->db, sql, err, sizeof(err)) != 0) {
			log_warn("database %s: prune history: %s", s->path, err);
			pthread_mutex_unlock(&s->lock);
			return -1;
		}
		total += sqlite3_changes(s->db);
	}
	pthread_mutex_unlock(&s->lock);
	return total;
}

int
store_vacuum(struct store *s)
{
	char err[256];
	int rc;

	if (store_ready(s) != 0)
		return -1;
	rc = store_exec(s->db, "VACUUM", err, sizeof(err));
	if (rc != 0)
		log_warn("database %s: vacuum: %s", s->path, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* store_scalar - one integer from a query; caller holds the lock. */
static int
store_scalar(struct store *s, const char *sql, long *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		store_fail(s, "stats", sqlite3_errcode(s->db));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		store_fail(s, "stats", rc);
		return -1;
	}
	return 0;
}

int
store_stats(struct store *s, struct store_stats *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	store_hist_flush(s);
	if (store_ready(s) != 0)
		return -1;
	rc = store_scalar(s, "SELECT count(*) FROM counters", &out->counters) ||
	    store_scalar(s, "SELECT count(*) FROM entries", &out->entries) ||
	    store_scalar(s, "SELECT count(*) FROM history", &out->history) ||
	    store_scalar(s, "PRAGMA page_count", &out->pages) ||
	    store_scalar(s, "PRAGMA page_size", &out->page_size) ? -1 : 0;
	pthread_mutex_unlock(&s->lock);
	return rc;
}
