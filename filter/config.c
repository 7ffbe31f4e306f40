/*
 * config.c - parse mxwarden.conf into a struct cfg.
 *
 * Format: "key = value" lines in the habit of Postfix's main.cf; '#'
 * starts a comment line; blank lines are ignored; a line starting with
 * white space continues the previous value. Unknown keys, bad values and
 * duplicate keys are errors reported as "file:line: reason", all of them
 * in one run, so `configtest` shows everything at once.
 *
 * The table cfg_keys[] is the single place a setting is declared: key,
 * type, default, bounds, where it lands in struct cfg, and its doc line.
 * Called at start-up, by `configtest` and on SIGHUP (no threads touch a
 * struct cfg while it is built; a finished one is read-only).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "util.h"

enum cfg_type { CT_STR, CT_INT, CT_MSEC, CT_SEC, CT_ENUM };

struct cfg_key {
	const char	*key;
	enum cfg_type	 type;
	const char	*def;		/* default, as text */
	long		 min, max;	/* CT_INT, CT_MSEC, CT_SEC */
	const char	*const *names;	/* CT_ENUM: the accepted words */
	size_t		 off;		/* offsetof(struct cfg, field) */
	int		 reloadable;
	const char	*doc;
};

static const char *const onerr_names[] = { "tempfail", "accept", NULL };
static const char *const level_names[] = { "err", "warn", "info", "debug", NULL };
static const char *const target_names[] = { "syslog", "stderr", NULL };
static const char *const forward_names[] = { "none", "xclient", "proxy-v1",
	"proxy-v2", NULL };
static const char *const no_yes_names[] = { "no", "yes", NULL };
static const char *const tls_names[] = { "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3",
	NULL };

#define OFF(f)	offsetof(struct cfg, f)

static const struct cfg_key cfg_keys[] = {
	{ "hostname", CT_STR, "", 0, 0, NULL, OFF(hostname), 1,
	  "this host's name (HELO_FORGED_OURS, SPF receiver); empty: the system host name" },
	{ "authserv_id", CT_STR, "", 0, 0, NULL, OFF(authserv_id), 1,
	  "authserv-id of the Authentication-Results header; empty: hostname" },
	{ "milter_socket", CT_STR, "inet:8891@127.0.0.1", 0, 0, NULL,
	  OFF(milter_socket), 0,
	  "milter listener: inet:PORT@ADDR, inet6:PORT@ADDR or unix:PATH" },
	{ "milter_timeout", CT_SEC, "300s", 1, 3600, NULL, OFF(milter_timeout), 0,
	  "seconds the milter waits for the MTA before giving up a connection" },
	{ "dns_server", CT_STR, "", 0, 0, NULL, OFF(dns_server), 0,
	  "resolver to query: IP, IP:PORT or [IPv6]:PORT; empty: /etc/resolv.conf" },
	{ "dns_timeout", CT_MSEC, "5s", 100, 60000, NULL, OFF(dns_timeout_ms), 0,
	  "per-query DNS timeout (ms or s suffix)" },
	{ "dns_unbound_conf", CT_STR, "", 0, 0, NULL, OFF(dns_unbound_conf), 0,
	  "optional libunbound config file (stub zones, local-zone, trust anchors)" },
	{ "db_path", CT_STR, "/var/lib/mxwarden/mxwarden.db", 0, 0, NULL,
	  OFF(db_path), 0, "SQLite database file for counters, blocks and history" },
	{ "rules_file", CT_STR, "/etc/mxwarden/rules/default.rules", 0, 0, NULL,
	  OFF(rules_file), 1, "the shipped rules file" },
	{ "local_rules_file", CT_STR, "/etc/mxwarden/rules/local.rules", 0, 0, NULL,
	  OFF(local_rules_file), 1,
	  "local rules that override the shipped ones; a missing file is fine" },
	{ "public_suffix_list", CT_STR,
	  "/usr/share/publicsuffix/public_suffix_list.dat", 0, 0, NULL,
	  OFF(public_suffix_list), 0,
	  "public suffix list for DMARC organizational domains" },
	{ "user", CT_STR, "", 0, 0, NULL, OFF(user), 0,
	  "user to run as after binding sockets when started as root" },
	{ "pid_file", CT_STR, "", 0, 0, NULL, OFF(pid_file), 0,
	  "file to write the daemon's PID to; empty: none" },
	{ "on_dns_error", CT_ENUM, "tempfail", 0, 0, onerr_names,
	  OFF(on_dns_error), 1,
	  "when a check needed for a decision hits a DNS error: tempfail or accept" },
	{ "on_db_error", CT_ENUM, "tempfail", 0, 0, onerr_names, OFF(on_db_error), 1,
	  "when the database fails: tempfail or accept" },
	{ "log_level", CT_ENUM, "info", 0, 0, level_names, OFF(log_level), 1,
	  "err, warn, info or debug" },
	{ "log_target", CT_ENUM, "syslog", 0, 0, target_names, OFF(log_target), 0,
	  "syslog (facility mail) or stderr; -f always logs to stderr" },
	{ "max_header_bytes", CT_INT, "262144", 4096, 16777216, NULL,
	  OFF(max_header_bytes), 1,
	  "header bytes of one message kept for the checks; beyond, HEADERS_TOO_BIG" },
	{ "max_body_bytes", CT_INT, "1048576", 0, 268435456, NULL,
	  OFF(max_body_bytes), 1,
	  "body bytes of one message kept for content rules" },
	{ "proxy_listen", CT_STR, "0.0.0.0:25 [::]:25", 0, 0, NULL,
	  OFF(proxy_listen), 0,
	  "SMTP proxy listeners: ADDR[:PORT] or [IPv6][:PORT], space-separated (port 25 by default)" },
	{ "proxy_backend", CT_STR, "127.0.0.1:10025", 0, 0, NULL,
	  OFF(proxy_backend), 1, "the MTA the proxy relays to: HOST:PORT or [IPv6]:PORT" },
	{ "proxy_backend_forward", CT_ENUM, "xclient", 0, 0, forward_names,
	  OFF(proxy_backend_forward), 1,
	  "how the backend learns the real client: xclient (Postfix), proxy-v1, proxy-v2 (PROXY protocol) or none" },
	{ "proxy_client_timeout", CT_SEC, "300s", 1, 3600, NULL,
	  OFF(proxy_client_timeout), 1, "proxy: wait for a client command" },
	{ "proxy_data_timeout", CT_SEC, "180s", 1, 3600, NULL,
	  OFF(proxy_data_timeout), 1, "proxy: wait for each piece of a client's message" },
	{ "proxy_backend_connect_timeout", CT_SEC, "30s", 1, 600, NULL,
	  OFF(proxy_backend_connect_timeout), 1, "proxy: wait for the backend connection" },
	{ "proxy_backend_timeout", CT_SEC, "300s", 1, 3600, NULL,
	  OFF(proxy_backend_timeout), 1, "proxy: wait for a backend reply" },
	{ "proxy_backend_data_timeout", CT_SEC, "600s", 1, 3600, NULL,
	  OFF(proxy_backend_data_timeout), 1,
	  "proxy: wait for the backend's reply to the end of a message" },
	{ "message_size_limit", CT_INT, "10240000", 1024, 1073741824, NULL,
	  OFF(message_size_limit), 1, "proxy: largest message accepted, in bytes" },
	{ "proxy_spool_memory", CT_INT, "1048576", 0, 268435456, NULL,
	  OFF(proxy_spool_memory), 1,
	  "proxy: message bytes kept in memory; beyond, a temporary file" },
	{ "proxy_spool_dir", CT_STR, "/tmp", 0, 0, NULL, OFF(proxy_spool_dir), 1,
	  "proxy: directory for temporary message files (unlinked at once)" },
	{ "proxy_max_connections", CT_INT, "500", 1, 100000, NULL,
	  OFF(proxy_max_connections), 0, "proxy: concurrent client connections" },
	{ "proxy_max_recipients", CT_INT, "1000", 1, 100000, NULL,
	  OFF(proxy_max_recipients), 1, "proxy: recipients per message" },
	{ "proxy_backend_reuse", CT_INT, "16", 0, 10000, NULL,
	  OFF(proxy_backend_reuse), 0,
	  "proxy: idle backend connections kept for the next client (forward none or xclient); 0: none" },
	{ "proxy_listen_tls", CT_STR, "", 0, 0, NULL, OFF(proxy_listen_tls), 0,
	  "proxy: implicit-TLS listeners (submissions, port 465 by default); needs tls_cert_file" },
	{ "tls_cert_file", CT_STR, "", 0, 0, NULL, OFF(tls_cert_file), 0,
	  "proxy: PEM certificate chain for STARTTLS and proxy_listen_tls; empty: no TLS" },
	{ "tls_key_file", CT_STR, "", 0, 0, NULL, OFF(tls_key_file), 0,
	  "proxy: PEM private key of tls_cert_file (read as root, before the privilege drop)" },
	{ "tls_min_version", CT_ENUM, "TLSv1.2", 0, 0, tls_names,
	  OFF(tls_min_version), 0, "proxy: lowest TLS version offered: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3" },
	{ "proxy_trusted_upstreams", CT_STR, "", 0, 0, NULL,
	  OFF(proxy_trusted_upstreams), 0,
	  "proxy: networks (CIDR, space-separated) that must send a PROXY v1/v2 header first" },
	{ "proxy_max_per_ip", CT_INT, "20", 1, 100000, NULL, OFF(proxy_max_per_ip), 0,
	  "proxy: concurrent connections from one client address (then 421 4.7.0)" },
	{ "proxy_greet_pause", CT_MSEC, "0", 0, 30000, NULL,
	  OFF(proxy_greet_pause_ms), 1,
	  "proxy: wait this long before the banner; a client talking first gets PREGREET (0: off)" },
	{ "proxy_bare_lf_exempt", CT_STR, "", 0, 0, NULL, OFF(proxy_bare_lf_exempt), 1,
	  "proxy: networks (CIDR) whose bare LF line ends are repaired to CRLF instead of refused" },
	{ "proxy_backend_chunking", CT_ENUM, "yes", 0, 0, no_yes_names,
	  OFF(proxy_backend_chunking), 1,
	  "proxy: yes: a backend that offers CHUNKING gets the message as one BDAT (no DATA round trip)" },
	{ "proxy_backend_tls", CT_ENUM, "no", 0, 0, no_yes_names,
	  OFF(proxy_backend_tls), 0,
	  "proxy: yes: STARTTLS to the backend, required (verified with proxy_backend_tls_ca_file)" },
	{ "proxy_backend_tls_ca_file", CT_STR, "", 0, 0, NULL,
	  OFF(proxy_backend_tls_ca_file), 0,
	  "proxy: PEM CA certificates the backend's certificate must chain to; empty: not verified" },
	{ "proxy_backend_tls_name", CT_STR, "", 0, 0, NULL,
	  OFF(proxy_backend_tls_name), 1,
	  "proxy: name (or IP address) the backend's certificate must match; empty: the host of proxy_backend" },
	{ "proxy_quarantine_header", CT_STR, "X-Mxwarden-Quarantine", 0, 0, NULL,
	  OFF(proxy_quarantine_header), 1,
	  "proxy: header added to a quarantined message for the backend (Postfix header_checks HOLD)" },
};

size_t
cfg_key_count(void)
{
	return ARRAY_LEN(cfg_keys);
}

const char *
cfg_key_name(size_t i)
{
	return i < ARRAY_LEN(cfg_keys) ? cfg_keys[i].key : NULL;
}

static const struct cfg_key *
cfg_find(const char *key)
{
	for (size_t i = 0; i < ARRAY_LEN(cfg_keys); i++)
		if (strcmp(cfg_keys[i].key, key) == 0)
			return &cfg_keys[i];
	return NULL;
}

/* cfg_parse_number - integer with an optional unit. For CT_MSEC the
 * result is milliseconds ("500ms", "5s", "2m", bare = ms); for CT_SEC
 * seconds ("30s", "5m", "1h", bare = s); CT_INT takes no unit. */
static int
cfg_parse_number(enum cfg_type type, const char *s, long *out)
{
	char *end;
	long v, mul = 1;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtol(s, &end, 10);
	if (errno != 0)
		return -1;
	if (type == CT_INT) {
		if (*end != '\0')
			return -1;
	} else if (strcmp(end, "") == 0) {
		mul = 1;
	} else if (strcmp(end, "ms") == 0 && type == CT_MSEC) {
		mul = 1;
	} else if (strcmp(end, "s") == 0) {
		mul = type == CT_MSEC ? 1000 : 1;
	} else if (strcmp(end, "m") == 0) {
		mul = type == CT_MSEC ? 60000 : 60;
	} else if (strcmp(end, "h") == 0) {
		mul = type == CT_MSEC ? 3600000 : 3600;
	} else {
		return -1;
	}
	if (v > LONG_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* cfg_set - store one value; on error write the reason. */
static int
cfg_set(struct cfg *c, const struct cfg_key *k, const char *val, char *why,
    size_t whylen)
{
	char *base = (char *)c;
	long n;

	switch (k->type) {
	case CT_STR: {
		char **p = (char **)(base + k->off);
		for (const char *q = val; *q; q++)
			if (iscntrl((unsigned char)*q)) {
				str_fmt(why, whylen, "%s: control character in value", k->key);
				return -1;
			}
		free(*p);
		*p = xstrdup(val);
		return 0;
	}
	case CT_INT:
	case CT_MSEC:
	case CT_SEC:
		if (cfg_parse_number(k->type, val, &n) != 0) {
			str_fmt(why, whylen, "%s: not a %s: \"%s\"", k->key,
			    k->type == CT_INT ? "number" : "duration", val);
			return -1;
		}
		if (n < k->min || n > k->max) {
			str_fmt(why, whylen, "%s: %s out of range %ld..%ld%s",
			    k->key, val, k->min, k->max,
			    k->type == CT_MSEC ? " ms" : k->type == CT_SEC ? " s" : "");
			return -1;
		}
		*(int *)(base + k->off) = (int)n;
		return 0;
	case CT_ENUM:
		for (int i = 0; k->names[i]; i++)
			if (strcmp(k->names[i], val) == 0) {
				if (k->names == target_names) {
					char **p = (char **)(base + k->off);
					free(*p);
					*p = xstrdup(val);
				} else {
					*(int *)(base + k->off) = i;
				}
				return 0;
			}
		{
			struct buf b;
			buf_init(&b, 256);
			for (int i = 0; k->names[i]; i++)
				buf_printf(&b, "%s%s", i ? ", " : "", k->names[i]);
			str_fmt(why, whylen, "%s: \"%s\" is not one of: %s", k->key,
			    val, b.data ? b.data : "");
			buf_free(&b);
		}
		return -1;
	}
	PANIC("cfg_set: type %d", k->type);
}

static void
cfg_error(struct buf *errs, int *nerr, const char *file, int line,
    const char *why)
{
	(*nerr)++;
	if (line > 0)
		buf_printf(errs, "%s:%d: %s\n", file, line, why);
	else
		buf_printf(errs, "%s: %s\n", file, why);
}

/* cfg_apply_line - "key = value" -> set it. */
static void
cfg_apply(struct cfg *c, char *line, const char *file, int lineno,
    unsigned char *seen, struct buf *errs, int *nerr)
{
	char why[512];
	char *eq = strchr(line, '=');

	if (eq == NULL) {
		cfg_error(errs, nerr, file, lineno, "expected \"key = value\"");
		return;
	}
	*eq = '\0';
	char *key = str_trim(line), *val = str_trim(eq + 1);
	const struct cfg_key *k = cfg_find(key);
	if (k == NULL) {
		str_fmt(why, sizeof(why), "unknown key \"%s\"", key);
		cfg_error(errs, nerr, file, lineno, why);
		return;
	}
	size_t idx = (size_t)(k - cfg_keys);
	if (seen != NULL && seen[idx]) {
		str_fmt(why, sizeof(why), "%s: set twice", key);
		cfg_error(errs, nerr, file, lineno, why);
		return;
	}
	if (seen != NULL)
		seen[idx] = 1;
	if (cfg_set(c, k, val, why, sizeof(why)) != 0)
		cfg_error(errs, nerr, file, lineno, why);
}

static void
cfg_read_file(struct cfg *c, const char *path, struct buf *errs, int *nerr)
{
	FILE *fp = fopen(path, "r");
	unsigned char seen[ARRAY_LEN(cfg_keys)] = { 0 };
	struct buf logical;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, startline = 0;

	if (fp == NULL) {
		char why[256];
		str_fmt(why, sizeof(why), "cannot open: %s", strerror(errno));
		cfg_error(errs, nerr, path, 0, why);
		return;
	}
	buf_init(&logical, 65536);
	while ((n = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		char *t = str_trim(line);
		if (*t == '#')
			continue;
		if (*t != '\0' && isspace((unsigned char)line[0]) && logical.len > 0) {
			/* continuation of the previous value */
			if (buf_printf(&logical, " %s", t) != 0)
				cfg_error(errs, nerr, path, lineno, "line too long");
			continue;
		}
		if (logical.len > 0)
			cfg_apply(c, logical.data, path, startline, seen, errs, nerr);
		buf_reset(&logical);
		if (*t == '\0')
			continue;
		if (isspace((unsigned char)line[0])) {
			cfg_error(errs, nerr, path, lineno,
			    "continuation line without a key before it");
			continue;
		}
		startline = lineno;
		if (buf_puts(&logical, t) != 0)
			cfg_error(errs, nerr, path, lineno, "line too long");
	}
	if (logical.len > 0)
		cfg_apply(c, logical.data, path, startline, seen, errs, nerr);
	buf_free(&logical);
	free(line);
	fclose(fp);
}

/* cfg_finish_backend_tls - verification settings that would silently
 * do nothing are errors: an administrator who names a CA file or a
 * name expects a verified backend. */
static void
cfg_finish_backend_tls(const struct cfg *c, const char *file, struct buf *errs,
    int *nerr)
{
	if (c->proxy_backend_tls_ca_file[0] != '\0' && !c->proxy_backend_tls)
		cfg_error(errs, nerr, file, 0,
		    "proxy_backend_tls_ca_file: needs proxy_backend_tls = yes");
	if (c->proxy_backend_tls_name[0] != '\0' &&
	    c->proxy_backend_tls_ca_file[0] == '\0')
		cfg_error(errs, nerr, file, 0,
		    "proxy_backend_tls_name: needs proxy_backend_tls_ca_file"
		    " (without it nothing is verified)");
	for (const char *p = c->proxy_backend_tls_name; *p; p++)
		if (isspace((unsigned char)*p)) {
			cfg_error(errs, nerr, file, 0,
			    "proxy_backend_tls_name: one name, no white space");
			break;
		}
}

/* cfg_finish - derived defaults and cross-key checks. */
static void
cfg_finish(struct cfg *c, const char *file, struct buf *errs, int *nerr)
{
	if (c->hostname[0] == '\0') {
		char h[256];
		if (gethostname(h, sizeof(h)) != 0)
			str_copy(h, "localhost", sizeof(h));
		h[sizeof(h) - 1] = '\0';
		free(c->hostname);
		c->hostname = xstrdup(h);
	}
	str_lower(c->hostname);
	if (c->authserv_id[0] == '\0') {
		free(c->authserv_id);
		c->authserv_id = xstrdup(c->hostname);
	}
	for (const char *p = c->authserv_id; *p; p++)
		if (isspace((unsigned char)*p) || *p == ';' || *p == '(' ||
		    *p == ')' || *p == '"') {
			cfg_error(errs, nerr, file, 0,
			    "authserv_id: must be one token (no space, ';', '(', ')' or '\"')");
			break;
		}
	if (strncmp(c->milter_socket, "inet:", 5) != 0 &&
	    strncmp(c->milter_socket, "inet6:", 6) != 0 &&
	    strncmp(c->milter_socket, "unix:", 5) != 0 &&
	    strncmp(c->milter_socket, "local:", 6) != 0)
		cfg_error(errs, nerr, file, 0,
		    "milter_socket: expected inet:PORT@ADDR, inet6:PORT@ADDR or unix:PATH");
	if (c->db_path[0] == '\0')
		cfg_error(errs, nerr, file, 0, "db_path: must not be empty");
	if (c->rules_file[0] == '\0')
		cfg_error(errs, nerr, file, 0, "rules_file: must not be empty");
	cfg_finish_backend_tls(c, file, errs, nerr);
}

struct cfg *
cfg_load(const char *path, char *const *overrides, size_t nover, char *errs,
    size_t errlen)
{
	struct cfg *c = xcalloc(1, sizeof(*c));
	struct buf eb;
	char why[512];
	int nerr = 0;

	buf_init(&eb, 1 << 20);
	for (size_t i = 0; i < ARRAY_LEN(cfg_keys); i++)
		if (cfg_set(c, &cfg_keys[i], cfg_keys[i].def, why, sizeof(why)) != 0)
			PANIC("bad default: %s", why);
	c->path = xstrdup(path ? path : "(defaults)");
	if (path != NULL)
		cfg_read_file(c, path, &eb, &nerr);
	for (size_t i = 0; i < nover; i++) {
		char *copy = xstrdup(overrides[i]);
		cfg_apply(c, copy, "-o", 0, NULL, &eb, &nerr);
		free(copy);
	}
	cfg_finish(c, c->path, &eb, &nerr);
	if (errs != NULL && errlen > 0) {
		str_copy(errs, eb.data ? eb.data : "", errlen);
		/* A cut message still ends with a newline. */
		if (eb.len >= errlen && errlen > 1)
			errs[errlen - 2] = '\n';
	}
	buf_free(&eb);
	if (nerr > 0) {
		cfg_free(c);
		return NULL;
	}
	return c;
}

void
cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < ARRAY_LEN(cfg_keys); i++)
		if (cfg_keys[i].type == CT_STR || cfg_keys[i].names == target_names)
			free(*(char **)((char *)c + cfg_keys[i].off));
	free(c->path);
	free(c);
}

void
cfg_print(const struct cfg *c, int with_docs, void *fpv)
{
	FILE *fp = fpv;
	const char *base = (const char *)c;

	for (size_t i = 0; i < ARRAY_LEN(cfg_keys); i++) {
		const struct cfg_key *k = &cfg_keys[i];
		if (with_docs)
			fprintf(fp, "\n# %s%s\n", k->doc,
			    k->reloadable ? "" : " (restart to change)");
		switch (k->type) {
		case CT_STR:
			fprintf(fp, "%s = %s\n", k->key, *(char *const *)(base + k->off));
			break;
		case CT_INT:
			fprintf(fp, "%s = %d\n", k->key, *(const int *)(base + k->off));
			break;
		case CT_MSEC:
			fprintf(fp, "%s = %dms\n", k->key, *(const int *)(base + k->off));
			break;
		case CT_SEC:
			fprintf(fp, "%s = %ds\n", k->key, *(const int *)(base + k->off));
			break;
		case CT_ENUM:
			if (k->names == target_names)
				fprintf(fp, "%s = %s\n", k->key,
				    *(char *const *)(base + k->off));
			else
				fprintf(fp, "%s = %s\n", k->key,
				    k->names[*(const int *)(base + k->off)]);
			break;
		}
	}
}
