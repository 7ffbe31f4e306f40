/*
 * store.c - SQLite implementation of the state store (see store.h).
 *
 * The schema lives in db/schema.sql and is compiled in as migration 1;
 * later migrations append to store_migrations[]. WAL mode and a busy
 * timeout let several processes share the file; every write is one
 * short transaction. A mutex serialises use of the one connection.
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

#define STORE_BUSY_MS	2000

struct store {
	sqlite3		*db;
	pthread_mutex_t	 lock;
	sqlite3_stmt	*ins_history;
};

static const char *const store_migrations[] = {
#include "schema.sql.h"
};

static int
store_exec(struct store *s, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		str_fmt(err, errlen, "%s", msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
store_schema_version(struct store *s)
{
	sqlite3_stmt *st;
	int v = -1;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->lock);
	return v;
}

/* store_migrate - bring the schema to the newest version we know. */
static int
store_migrate(struct store *s, char *err, size_t errlen)
{
	int have = store_schema_version(s), want = (int)ARRAY_LEN(store_migrations);

	if (have < 0) {
		str_fmt(err, errlen, "cannot read the schema version: %s",
		    sqlite3_errmsg(s->db));
		return -1;
	}
	if (have > want) {
		str_fmt(err, errlen, "database schema version %d is newer than "
		    "this mxwarden knows (%d): refusing to touch it", have, want);
		return -1;
	}
	for (int v = have; v < want; v++) {
		char sql[64];
		if (store_exec(s, "BEGIN IMMEDIATE", err, errlen) != 0)
			return -1;
		str_fmt(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (store_exec(s, store_migrations[v], err, errlen) != 0 ||
		    store_exec(s, sql, err, errlen) != 0) {
			char ignore[8];
			store_exec(s, "ROLLBACK", ignore, sizeof(ignore));
			return -1;
		}
		if (store_exec(s, "COMMIT", err, errlen) != 0)
			return -1;
		log_info("database: schema migrated to version %d", v + 1);
	}
	return 0;
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store *s = xcalloc(1, sizeof(*s));
	int rc;

	pthread_mutex_init(&s->lock, NULL);
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		str_fmt(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) :
		    sqlite3_errstr(rc));
		store_close(s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	char why[256];
	if (store_exec(s, "PRAGMA journal_mode = WAL", why, sizeof(why)) != 0 ||
	    store_exec(s, "PRAGMA synchronous = NORMAL", why, sizeof(why)) != 0 ||
	    store_migrate(s, why, sizeof(why)) != 0) {
		str_fmt(err, errlen, "%s: %s", path, why);
		store_close(s);
		return NULL;
	}
	if (sqlite3_prepare_v2(s->db, "INSERT INTO history (ts, client_ip, helo, "
	    "mail_from, rcpt_count, action, score, symbols) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?)", -1, &s->ins_history, NULL) != SQLITE_OK) {
		str_fmt(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
		store_close(s);
		return NULL;
	}
	return s;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->ins_history);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int
store_history_add(struct store *s, const struct txn *t, const char *action)
{
	struct buf syms;
	int rc;

	buf_init(&syms, 8192);
	for (size_t i = 0; i < t->nsym; i++)
		buf_printf(&syms, "%s%s", i ? "," : "", t->sym[i].name);
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = s->ins_history;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 2, t->client_ip ? t->client_ip : "", -1,
	    SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, t->helo, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, t->mail_from, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, (int)t->nrcpt);
	sqlite3_bind_text(st, 6, action, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 7, t->score);
	sqlite3_bind_text(st, 8, syms.data ? syms.data : "", -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		log_warn("database: history insert failed: %s",
		    sqlite3_errmsg(s->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&s->lock);
	buf_free(&syms);
	return rc == SQLITE_DONE ? 0 : -1;
}
