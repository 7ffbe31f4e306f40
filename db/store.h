/*
 * store.h - the state store (SQLite by default).
 *
 * The interface is small so that another store (shared by a fleet of MX
 * hosts) can stand behind it later. Opened after privileges are dropped.
 * Safe for many threads (one connection per call site under a mutex;
 * SQLite in WAL mode with a busy timeout) and for several mxwarden
 * processes sharing one file. A failing store never ends the process:
 * calls return -1 and the caller applies on_db_error.
 */
#ifndef MXW_STORE_H
#define MXW_STORE_H

#include <stddef.h>

struct store;
struct txn;

/* store_open - open or create the database and apply migrations.
 * NULL + reason on failure (unwritable, corrupt, newer schema). */
struct store	*store_open(const char *path, char *err, size_t errlen);
void		 store_close(struct store *s);

/* store_schema_version - the version the database is at. */
int		 store_schema_version(struct store *s);

/* store_history_add - record a finished transaction. 0 or -1. */
int		 store_history_add(struct store *s, const struct txn *t,
		    const char *action);

#endif
