/*
 * store_test.c - the state store (db/store.c): migrations, the counter,
 * entries with expiry, listing and pruning, exact counts with threads
 * and with processes sharing the file, a locked database and recovery,
 * the history rows written in batches by the store's writer thread.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "store.h"
#include "txn.h"
#include "util.h"

struct fx {
	char	 dir[64];
	char	 path[128];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	str_copy(f->dir, "/tmp/mxw-store-XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL)
		return -1;
	str_fmt(f->path, sizeof(f->path), "%s/t.db", f->dir);
	log_init("store_test", 1, LOG_LVL_ERR);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char p[160];
	static const char *const sfx[] = { "", "-wal", "-shm" };

	for (size_t i = 0; i < ARRAY_LEN(sfx); i++) {
		str_fmt(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct store *
open_ok(struct fx *f)
{
	char err[256];
	struct store *s = store_open(f->path, err, sizeof(err));

	if (s == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

static void
test_migrations(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	char err[256];
	sqlite3 *db;

	assert_true(store_schema_known() >= 3);
	assert_int_equal(store_schema_version(s), store_schema_known());
	store_close(s);
	/* Opening again changes nothing. */
	s = open_ok(f);
	assert_int_equal(store_schema_version(s), store_schema_known());
	store_close(s);
	/* A newer database is refused, with a reason, and left alone. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	char sql[64];
	str_fmt(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_known() + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(store_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), store_schema_known() + 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
test_not_a_database(void **state)
{
	struct fx *f = *state;
	char err[256];
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database at all\n", fp);
	fclose(fp);
	assert_null(store_open(f->path, err, sizeof(err)));
	assert_true(err[0] != '\0');
}

static void
test_counter_window(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	long n;
	time_t t0 = 1000000;

	for (long i = 1; i <= 5; i++) {
		assert_int_equal(store_count(s, "rate:x", "1.2.3.4", 10, 1, t0 + i, &n), 0);
		assert_int_equal(n, i);
	}
	/* Read without counting; other keys and kinds are separate. */
	assert_int_equal(store_count(s, "rate:x", "1.2.3.4", 10, 0, t0 + 9, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(store_count(s, "rate:x", "1.2.3.5", 10, 1, t0 + 9, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_count(s, "rate:y", "1.2.3.4", 10, 3, t0 + 9, &n), 0);
	assert_int_equal(n, 3);
	/* The window started at t0+1 and lasts 10 s: at t0+11 it is over. */
	assert_int_equal(store_count(s, "rate:x", "1.2.3.4", 10, 0, t0 + 11, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_count(s, "rate:x", "1.2.3.4", 10, 1, t0 + 11, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_count(s, "rate:x", "1.2.3.4", 10, 1, t0 + 20, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_count(s, "rate:x", "1.2.3.4", 10, 1, t0 + 21, &n), 0);
	assert_int_equal(n, 1);
	store_close(s);
}

static int
count_rows(const struct store_row *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void
test_entries(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	char v[64];
	time_t c, e, t0 = 2000000;
	int n = 0;

	assert_int_equal(store_get(s, "block", "10.0.0.1", t0, v, sizeof(v), NULL,
	    NULL), 0);
	assert_int_equal(store_set(s, "block", "10.0.0.1", "harvest", t0, t0 + 60), 0);
	assert_int_equal(store_set(s, "block", "10.0.0.0/24", "admin", t0, 0), 0);
	assert_int_equal(store_get(s, "block", "10.0.0.1", t0 + 59, v, sizeof(v),
	    &c, &e), 1);
	assert_string_equal(v, "harvest");
	assert_int_equal(c, t0);
	assert_int_equal(e, t0 + 60);
	/* Expired: invisible, though still stored until pruned. */
	assert_int_equal(store_get(s, "block", "10.0.0.1", t0 + 60, v, sizeof(v),
	    NULL, NULL), 0);
	/* expires 0 never expires. */
	assert_int_equal(store_get(s, "block", "10.0.0.0/24", t0 + 999999, v,
	    sizeof(v), NULL, NULL), 1);
	/* Replace. */
	assert_int_equal(store_set(s, "block", "10.0.0.1", "admin", t0, t0 + 600), 0);
	assert_int_equal(store_get(s, "block", "10.0.0.1", t0 + 100, v, sizeof(v),
	    NULL, NULL), 1);
	assert_string_equal(v, "admin");
	/* List with a prefix and exactly. */
	long cnt;
	store_count(s, "rate:a", "k", 30, 1, t0, &cnt);
	store_count(s, "rate:b", "k", 30, 1, t0, &cnt);
	assert_int_equal(store_list(s, "rate:*", t0 + 1, count_rows, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_list(s, "block", t0 + 1, count_rows, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_list(s, "rate:", t0 + 1, count_rows, &n), 0);
	assert_int_equal(n, 0);
	/* Delete. */
	assert_int_equal(store_del(s, "block", "10.0.0.1"), 1);
	assert_int_equal(store_del(s, "block", "10.0.0.1"), 0);
	/* Prune removes the expired counters (30 s) but not the
	 * permanent block. */
	assert_int_equal(store_prune(s, t0 + 31, 0), 2);
	struct store_stats st;
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.counters, 0);
	assert_int_equal(st.entries, 1);
	assert_int_equal(store_vacuum(s), 0);
	store_close(s);
}

struct worker {
	struct store	*s;
	int		 n;
	int		 errors;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	long c;

	for (int i = 0; i < w->n; i++)
		if (store_count(w->s, "rate:t", "k", 3600, 1, time(NULL), &c) != 0)
			w->errors++;
	return NULL;
}

static void
test_threads_exact(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	pthread_t th[4];
	struct worker w = { .s = s, .n = 300 };
	struct worker ws[4];
	long c;

	for (int i = 0; i < 4; i++) {
		ws[i] = w;
		pthread_create(&th[i], NULL, worker_run, &ws[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ws[i].errors, 0);
	}
	assert_int_equal(store_count(s, "rate:t", "k", 3600, 0, time(NULL), &c), 0);
	assert_int_equal(c, 1200);
	store_close(s);
}

/* Several processes, each with its own connection: no lost increment. */
static void
test_processes_exact(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	pid_t pid[3];
	long c;

	store_close(s);
	for (int i = 0; i < 3; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			char err[256];
			struct store *cs = store_open(f->path, err, sizeof(err));
			struct worker w = { .s = cs, .n = 400 };
			if (cs == NULL)
				_exit(2);
			store_set_busy_ms(cs, 10000);
			worker_run(&w);
			store_close(cs);
			_exit(w.errors == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < 3; i++) {
		int st;
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	s = open_ok(f);
	assert_int_equal(store_count(s, "rate:t", "k", 3600, 0, time(NULL), &c), 0);
	assert_int_equal(c, 1200);
	store_close(s);
}

/* Another connection holds the write lock longer than the busy timeout:
 * the call fails (the caller applies on_db_error) and the next call
 * after the lock is gone succeeds. */
static void
test_locked_and_recovery(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	sqlite3 *db;
	long c;

	store_set_busy_ms(s, 100);
	assert_int_equal(store_count(s, "rate:l", "k", 60, 1, 5000, &c), 0);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(store_count(s, "rate:l", "k", 60, 1, 5001, &c), -1);
	assert_int_equal(store_set(s, "block", "x", "y", 5001, 0), -1);
	/* Readers are not blocked in WAL mode. */
	assert_int_equal(store_count(s, "rate:l", "k", 60, 0, 5001, &c), 0);
	assert_int_equal(c, 1);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_count(s, "rate:l", "k", 60, 1, 5002, &c), 0);
	assert_int_equal(c, 2);
	store_close(s);
}

/* A batch is one transaction: its increments reach another connection
 * together at the end, and batches can follow each other. */
static void
test_batch(void **state)
{
	struct fx *f = *state;
	struct store *a = open_ok(f), *b = open_ok(f);
	time_t t0 = 1700000000;
	long n;

	for (int round = 1; round <= 3; round++) {
		store_batch_begin(a);
		assert_int_equal(store_count(a, "rate:x", "k", 60, 1, t0, &n), 0);
		assert_int_equal(store_count(a, "rate:y", "k", 60, 1, t0, &n), 0);
		assert_int_equal(n, round);
		/* not committed yet: the other connection sees the last round */
		assert_int_equal(store_count(b, "rate:x", "k", 60, 0, t0, &n), 0);
		assert_int_equal(n, round - 1);
		store_batch_end(a);
		assert_int_equal(store_count(b, "rate:x", "k", 60, 0, t0, &n), 0);
		assert_int_equal(n, round);
		assert_int_equal(store_count(b, "rate:y", "k", 60, 0, t0, &n), 0);
		assert_int_equal(n, round);
	}
	store_close(a);
	store_close(b);
}

struct ip_rows {
	char	 keys[8][64];
	int	 n;
};

static int
ip_row(const struct store_row *r, void *arg)
{
	struct ip_rows *o = arg;

	if (o->n < 8)
		str_copy(o->keys[o->n], r->key, sizeof(o->keys[0]));
	o->n++;
	return 0;
}

/* store_list_keys: the entries of the keys asked for first, then the
 * unexpired networks; none of the thousands of other IPs' entries. */
static void
test_list_ip(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	time_t t0 = 1700000000;
	struct ip_rows o;
	char ip[32];
	const char *k37[3] = { "10.0.3.7", NULL, NULL };
	const char *k99[3] = { NULL, "10.9.9.9", NULL };
	const char *kw[3] = { "192.0.2.1", "a@b.test", "@c.test" };

	store_batch_begin(s);
	for (int i = 0; i < 3000; i++) {
		str_fmt(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		assert_int_equal(store_set(s, "block", ip, "harvest", t0, t0 + 60), 0);
	}
	store_batch_end(s);
	assert_int_equal(store_set(s, "block", "10.0.0.0/16", "admin", t0, 0), 0);
	assert_int_equal(store_set(s, "block", "192.0.2.0/24", "old", t0, t0 + 1), 0);
	assert_int_equal(store_set(s, "block", "2001:db8::/32", "v6", t0, 0), 0);
	assert_int_equal(store_set(s, "whitelist", "10.1.0.0/16", "x", t0, 0), 0);
	assert_int_equal(store_set(s, "block", "10.0.3.7", "harvest", t0, t0 + 60), 0);

	memset(&o, 0, sizeof(o));
	assert_int_equal(store_list_keys(s, "block", k37, t0 + 10, ip_row, &o), 0);
	assert_int_equal(o.n, 3);
	assert_string_equal(o.keys[0], "10.0.3.7");
	assert_string_equal(o.keys[1], "10.0.0.0/16");
	assert_string_equal(o.keys[2], "2001:db8::/32");
	/* an IP with no entry of its own: the networks only */
	memset(&o, 0, sizeof(o));
	assert_int_equal(store_list_keys(s, "block", k99, t0 + 10, ip_row, &o), 0);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.keys[0], "10.0.0.0/16");
	/* expired entries are not listed */
	memset(&o, 0, sizeof(o));
	assert_int_equal(store_list_keys(s, "block", k37, t0 + 100, ip_row, &o), 0);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.keys[0], "10.0.0.0/16");
	/* three keys at once (a whitelist lookup), in the order asked */
	assert_int_equal(store_set(s, "whitelist", "a@b.test", "x", t0, 0), 0);
	assert_int_equal(store_set(s, "whitelist", "@c.test", "x", t0, 0), 0);
	assert_int_equal(store_set(s, "whitelist", "z@b.test", "x", t0, 0), 0);
	memset(&o, 0, sizeof(o));
	assert_int_equal(store_list_keys(s, "whitelist", kw, t0, ip_row, &o), 0);
	assert_int_equal(o.n, 3);
	assert_string_equal(o.keys[0], "a@b.test");
	assert_string_equal(o.keys[1], "@c.test");
	assert_string_equal(o.keys[2], "10.1.0.0/16");
	store_close(s);
}

struct hist_worker {
	struct store	*s;
	int		 n, errors;
};

static void *
hist_run(void *arg)
{
	struct hist_worker *w = arg;
	struct txn_sym sym[2] = { { .name = "SPF_PASS" }, { .name = "DKIM_PASS" } };
	struct txn t = { .client_ip = "192.0.2.1", .helo = "h.example",
		.mail_from = "a@example.org", .nrcpt = 1, .sym = sym, .nsym = 2,
		.score = -1.5 };

	for (int i = 0; i < w->n; i++)
		if (store_history_add(w->s, &t, "accept") != 0)
			w->errors++;
	return NULL;
}

/* history_seen - the rows another connection sees, waiting up to 3 s
 * for them to reach want (-1 on error). */
static long
history_seen(struct fx *f, long want)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long n = -1;

	if (sqlite3_open(f->path, &db) != SQLITE_OK)
		return -1;
	for (int i = 0; i < 300 && n != want; i++) {
		if (i > 0)
			usleep(10000);
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM history WHERE "
		    "symbols = 'SPF_PASS,DKIM_PASS' AND action = 'accept'", -1,
		    &st, NULL) != SQLITE_OK)
			break;
		if (sqlite3_step(st) == SQLITE_ROW)
			n = (long)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

/* History rows from several threads are all committed by the writer,
 * without a flush, and seen by another connection; rows still queued
 * when the store is closed are written by store_close. */
static void
test_history(void **state)
{
	struct fx *f = *state;
	struct store *s = open_ok(f);
	pthread_t th[4];
	struct hist_worker w[4];
	struct store_stats st;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct hist_worker){ .s = s, .n = 500 };
		pthread_create(&th[i], NULL, hist_run, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].errors, 0);
	}
	assert_int_equal(history_seen(f, 2000), 2000);
	w[0].n = 7;
	hist_run(&w[0]);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.history, 2007);
	w[0].n = 10;
	hist_run(&w[0]);
	store_close(s);
	assert_int_equal(history_seen(f, 2017), 2017);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_ip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counter_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_and_recovery, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
