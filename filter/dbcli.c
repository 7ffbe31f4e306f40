/*
 * dbcli.c - `mxwarden db` (see dbcli.h).
 *
 *   db list blocks|rates|greylist|harvest|whitelist [--json]
 *   db block IP|CIDR [--for DURATION] [--reason TEXT]
 *   db unblock IP|CIDR
 *   db whitelist IP|CIDR|ADDRESS|@DOMAIN [--for DURATION]
 *   db unwhitelist IP|CIDR|ADDRESS|@DOMAIN
 *   db stats [--json]
 *   db prune [--history DURATION]
 *   db vacuum
 *
 * Called by filter/main.c in its own process; one store connection,
 * single-threaded. Durations: N, Ns, Nm, Nh, Nd.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbcli.h"
#include "rules.h"
#include "store.h"
#include "util.h"

struct dbcli_out {
	int	 json;
	int	 n;
	time_t	 now;
};

static long
dbcli_duration(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0)
		return -1;
	if (*end == 'm')
		v *= 60;
	else if (*end == 'h')
		v *= 3600;
	else if (*end == 'd')
		v *= 86400;
	else if (*end != 's' && *end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0')
		return -1;
	return v;
}

static void
dbcli_json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int
dbcli_row(const struct store_row *r, void *arg)
{
	struct dbcli_out *o = arg;

	if (o->json) {
		printf("%s{\"kind\":", o->n ? "," : "");
		dbcli_json_str(r->kind);
		printf(",\"key\":");
		dbcli_json_str(r->key);
		if (r->count >= 0) {
			printf(",\"count\":%ld,\"since\":%lld", r->count,
			    (long long)r->created);
		} else {
			printf(",\"value\":");
			dbcli_json_str(r->value);
			printf(",\"created\":%lld", (long long)r->created);
		}
		printf(",\"expires\":%lld}", (long long)r->expires);
	} else {
		char when[32] = "never";
		if (r->expires > 0)
			str_fmt(when, sizeof(when), "in %llds",
			    (long long)(r->expires - o->now));
		if (r->count >= 0)
			printf("%-12s %-40s count=%ld expires %s\n", r->kind, r->key,
			    r->count, when);
		else
			printf("%-12s %-40s %s expires %s\n", r->kind, r->key,
			    r->value ? r->value : "", when);
	}
	o->n++;
	return 0;
}

static int
dbcli_list(struct store *s, const char *what, int json)
{
	static const struct { const char *name, *kinds[3]; } map[] = {
		{ "blocks", { "block", NULL, NULL } },
		{ "rates", { "rate:*", NULL, NULL } },
		{ "greylist", { "grey", "awl", NULL } },
		{ "harvest", { "harvest", NULL, NULL } },
		{ "whitelist", { "whitelist", NULL, NULL } },
	};
	struct dbcli_out o = { .json = json, .now = time(NULL) };

	for (size_t i = 0; i < ARRAY_LEN(map); i++) {
		if (strcmp(map[i].name, what) != 0)
			continue;
		if (json)
			putchar('[');
		for (int k = 0; k < 3 && map[i].kinds[k]; k++)
			if (store_list(s, map[i].kinds[k], o.now, dbcli_row, &o) != 0)
				return 1;
		if (json)
			puts("]");
		else if (o.n == 0)
			printf("no %s\n", what);
		return 0;
	}
	fprintf(stderr, "mxwarden db list: blocks, rates, greylist, harvest or "
	    "whitelist\n");
	return 2;
}

/* dbcli_target_ok - an IP, a CIDR, an address or @domain. */
static int
dbcli_target_ok(const char *t, int ip_only)
{
	unsigned char b[16];

	if (strchr(t, '/') != NULL)
		return rules_ip_in_cidr("0.0.0.0", t) >= 0;
	if (inet_pton(AF_INET, t, b) == 1 || inet_pton(AF_INET6, t, b) == 1)
		return 1;
	if (ip_only)
		return 0;
	for (const char *p = t; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return 0;
	return strchr(t, '@') != NULL && t[strlen(t) - 1] != '@';
}

/* dbcli_key - target as stored, in the form the daemons look up: an IP
 * in its canonical text (2001:DB8:0::1 is 2001:db8::1), an address or
 * @domain in lower case; a CIDR as given. */
static const char *
dbcli_key(const char *target, char *buf, size_t len)
{
	unsigned char b[16];

	if (inet_pton(AF_INET6, target, b) == 1 &&
	    inet_ntop(AF_INET6, b, buf, (socklen_t)len) != NULL)
		return buf;
	if (inet_pton(AF_INET, target, b) == 1 &&
	    inet_ntop(AF_INET, b, buf, (socklen_t)len) != NULL)
		return buf;
	if (strchr(target, '@') != NULL && strlen(target) < len) {
		str_copy(buf, target, len);
		return str_lower(buf);
	}
	return target;
}

static int
dbcli_set(struct store *s, int argc, char **argv, const char *kind,
    const char *dflt_value)
{
	char kbuf[320];
	const char *value = dflt_value;
	long dur = 0;
	time_t now = time(NULL);

	if (argc < 2 || !dbcli_target_ok(argv[1], strcmp(kind, "block") == 0)) {
		fprintf(stderr, "usage: mxwarden db %s %s [--for DURATION]\n",
		    argv[0], strcmp(kind, "block") == 0 ? "IP|CIDR" :
		    "IP|CIDR|ADDRESS|@DOMAIN");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
			if ((dur = dbcli_duration(argv[++i])) <= 0) {
				fprintf(stderr, "mxwarden db: bad duration %s\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
			value = argv[++i];
		} else {
			fprintf(stderr, "mxwarden db: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	const char *key = dbcli_key(argv[1], kbuf, sizeof(kbuf));
	if (store_set(s, kind, key, value, now, dur ? now + dur : 0) != 0)
		return 1;
	printf("%s %s%s\n", argv[0], key, dur ? "" : " (no expiry)");
	return 0;
}

static int
dbcli_unset(struct store *s, int argc, char **argv, const char *kind)
{
	char kbuf[320];
	int n;

	if (argc != 2) {
		fprintf(stderr, "usage: mxwarden db %s TARGET\n", argv[0]);
		return 2;
	}
	const char *key = dbcli_key(argv[1], kbuf, sizeof(kbuf));
	if ((n = store_del(s, kind, key)) < 0)
		return 1;
	/* Unblocking also forgets the harvest count that caused it. */
	if (strcmp(kind, "block") == 0 && store_del(s, "harvest", key) < 0)
		return 1;
	if (n == 0) {
		fprintf(stderr, "mxwarden db %s: %s not found\n", argv[0], key);
		return 1;
	}
	printf("%s %s\n", argv[0], key);
	return 0;
}

static int
dbcli_stats(struct store *s, int json)
{
	struct store_stats st;

	if (store_stats(s, &st) != 0)
		return 1;
	if (json)
		printf("{\"schema\":%d,\"counters\":%ld,\"entries\":%ld,"
		    "\"history\":%ld,\"bytes\":%ld}\n", store_schema_version(s),
		    st.counters, st.entries, st.history, st.pages * st.page_size);
	else
		printf("schema version %d\ncounters %ld\nentries %ld\nhistory %ld\n"
		    "size %ld bytes\n", store_schema_version(s), st.counters,
		    st.entries, st.history, st.pages * st.page_size);
	return 0;
}

int
dbcli_main(const char *path, int argc, char **argv)
{
	char err[512];
	struct store *s;
	int rc, json = 0;

	if (argc < 1) {
		fprintf(stderr, "usage: mxwarden db list|block|unblock|whitelist|"
		    "unwhitelist|stats|prune|vacuum ...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
			for (int j = i; j + 1 < argc; j++)
				argv[j] = argv[j + 1];
			argc--;
			break;
		}
	if ((s = store_open(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mxwarden db: %s\n", err);
		return 1;
	}
	const char *c = argv[0];
	if (strcmp(c, "list") == 0 && argc == 2)
		rc = dbcli_list(s, argv[1], json);
	else if (strcmp(c, "block") == 0)
		rc = dbcli_set(s, argc, argv, "block", "admin");
	else if (strcmp(c, "unblock") == 0)
		rc = dbcli_unset(s, argc, argv, "block");
	else if (strcmp(c, "whitelist") == 0)
		rc = dbcli_set(s, argc, argv, "whitelist", "admin");
	else if (strcmp(c, "unwhitelist") == 0)
		rc = dbcli_unset(s, argc, argv, "whitelist");
	else if (strcmp(c, "stats") == 0)
		rc = dbcli_stats(s, json);
	else if (strcmp(c, "prune") == 0) {
		long keep = 30L * 86400, n;
		if (argc == 3 && strcmp(argv[1], "--history") == 0)
			keep = dbcli_duration(argv[2]);
		n = keep < 0 ? -1 : store_prune(s, time(NULL), keep);
		rc = n < 0 ? 1 : 0;
		if (n >= 0)
			printf("pruned %ld rows\n", n);
	} else if (strcmp(c, "vacuum") == 0) {
		rc = store_vacuum(s) == 0 ? 0 : 1;
	} else {
		fprintf(stderr, "mxwarden db: unknown command \"%s\"\n", c);
		rc = 2;
	}
	store_close(s);
	if (rc == 1)
		fprintf(stderr, "mxwarden db %s: database error (see the log)\n", c);
	return rc;
}
