/*
 * config_test.c - mxwarden.conf parsing (filter/config.c), and that
 * every key of the table is documented in the man page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static char *
write_tmp(const char *text)
{
	char *path = strdup("/tmp/mxw-conf-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static struct cfg *
load_text(const char *text, char *errs, size_t errlen)
{
	char *p = write_tmp(text);
	struct cfg *c = cfg_load(p, NULL, 0, errs, errlen);

	unlink(p);
	free(p);
	return c;
}

static void
test_config_values(void **state)
{
	char errs[4096];
	struct cfg *c = load_text(
	    "# comment\n"
	    "hostname = MX.Example.ORG\n"
	    "milter_socket = unix:/run/mxwarden/milter.sock\n"
	    "dns_server = 127.0.0.1:5353\n"
	    "dns_timeout = 1500ms\n"
	    "milter_timeout = 2m\n"
	    "on_dns_error = accept\n"
	    "rules_file = /a/b.rules\n"
	    "local_rules_file =\n"
	    "user = mxwarden\n"
	    "log_level = debug\n", errs, sizeof(errs));

	(void)state;
	if (c == NULL)
		fail_msg("%s", errs);
	assert_string_equal(c->hostname, "mx.example.org");
	assert_string_equal(c->authserv_id, "mx.example.org");
	assert_string_equal(c->milter_socket, "unix:/run/mxwarden/milter.sock");
	assert_string_equal(c->dns_server, "127.0.0.1:5353");
	assert_int_equal(c->dns_timeout_ms, 1500);
	assert_int_equal(c->milter_timeout, 120);
	assert_int_equal(c->on_dns_error, CFG_ONERR_ACCEPT);
	assert_int_equal(c->on_db_error, CFG_ONERR_TEMPFAIL);
	assert_string_equal(c->local_rules_file, "");
	assert_int_equal(c->log_level, 3);
	cfg_free(c);
}

static void
test_config_continuation_and_overrides(void **state)
{
	char errs[4096];
	char *p = write_tmp("authserv_id = a.example\n"
	    "dns_unbound_conf =\n    /etc/unbound/x.conf\n");
	char *over[] = { "authserv_id=b.example", "dns_timeout = 2s" };
	struct cfg *c = cfg_load(p, over, 2, errs, sizeof(errs));

	(void)state;
	unlink(p);
	free(p);
	if (c == NULL)
		fail_msg("%s", errs);
	assert_string_equal(c->authserv_id, "b.example");
	assert_string_equal(c->dns_unbound_conf, "/etc/unbound/x.conf");
	assert_int_equal(c->dns_timeout_ms, 2000);
	cfg_free(c);
}

struct bad_case {
	const char	*text;
	const char	*want;
};

static const struct bad_case bad[] = {
	{ "no_such_key = 1\n", ":1: unknown key \"no_such_key\"" },
	{ "\n\nhostname\n", ":3: expected \"key = value\"" },
	{ "dns_timeout = 5x\n", ":1: dns_timeout: not a duration" },
	{ "dns_timeout = 10\n", ":1: dns_timeout: 10 out of range" },
	{ "dns_timeout = 99999999999999999999\n", ":1: dns_timeout: not a duration" },
	{ "milter_timeout = 0\n", ":1: milter_timeout: 0 out of range" },
	{ "max_header_bytes = 12k\n", ":1: max_header_bytes: not a number" },
	{ "on_dns_error = maybe\n", ":1: on_dns_error: \"maybe\" is not one of" },
	{ "hostname = a\nhostname = b\n", ":2: hostname: set twice" },
	{ "milter_socket = tcp:1@x\n", "milter_socket: expected" },
	{ "authserv_id = a b\n", "authserv_id: must be one token" },
	{ "db_path =\n", "db_path: must not be empty" },
	{ "  indented = 1\n", ":1: continuation line without a key" },
	/* Verification settings that would silently do nothing. */
	{ "proxy_backend_tls_ca_file = /etc/ssl/ca.pem\n",
	  "proxy_backend_tls_ca_file: needs proxy_backend_tls = yes" },
	{ "proxy_backend_tls = yes\nproxy_backend_tls_name = mx.example\n",
	  "proxy_backend_tls_name: needs proxy_backend_tls_ca_file" },
	{ "proxy_backend_tls = yes\nproxy_backend_tls_ca_file = /x.pem\n"
	  "proxy_backend_tls_name = a.example b.example\n",
	  "proxy_backend_tls_name: one name" },
};

/* The backend's TLS settings as given; names default to empty. */
static void
test_config_backend_tls(void **state)
{
	char errs[4096];
	struct cfg *c = load_text("proxy_backend_tls = yes\n", errs, sizeof(errs));

	(void)state;
	if (c == NULL)
		fail_msg("%s", errs);
	assert_int_equal(c->proxy_backend_tls, 1);
	assert_string_equal(c->proxy_backend_tls_ca_file, "");
	assert_string_equal(c->proxy_backend_tls_name, "");
	cfg_free(c);
	c = load_text("proxy_backend_tls = yes\n"
	    "proxy_backend_tls_ca_file = /etc/mxwarden/ca.pem\n"
	    "proxy_backend_tls_name = [2001:db8::25]\n", errs, sizeof(errs));
	if (c == NULL)
		fail_msg("%s", errs);
	assert_string_equal(c->proxy_backend_tls_ca_file, "/etc/mxwarden/ca.pem");
	assert_string_equal(c->proxy_backend_tls_name, "[2001:db8::25]");
	cfg_free(c);
}

static void
test_config_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char errs[4096] = "";
		struct cfg *c = load_text(bad[i].text, errs, sizeof(errs));
		if (c != NULL)
			fail_msg("case %zu accepted: %s", i, bad[i].text);
		if (strstr(errs, bad[i].want) == NULL)
			fail_msg("case %zu: want \"%s\" in \"%s\"", i, bad[i].want, errs);
	}
}

static void
test_config_all_errors_reported(void **state)
{
	char errs[4096] = "";
	struct cfg *c = load_text("a = 1\nb = 2\ndns_timeout = x\n", errs,
	    sizeof(errs));

	(void)state;
	assert_null(c);
	assert_non_null(strstr(errs, ":1: unknown key \"a\""));
	assert_non_null(strstr(errs, ":2: unknown key \"b\""));
	assert_non_null(strstr(errs, ":3: dns_timeout"));
}

static void
test_config_missing_file(void **state)
{
	char errs[1024];

	(void)state;
	assert_null(cfg_load("/nonexistent/mxwarden.conf", NULL, 0, errs,
	    sizeof(errs)));
	assert_non_null(strstr(errs, "/nonexistent/mxwarden.conf: cannot open"));
}

/* Every key of the table appears in the man page mxwarden.conf(5). */
static void
test_config_keys_documented(void **state)
{
	const char *top = getenv("MXW_TOP");
	char path[4096];
	FILE *fp;
	static char text[1 << 20];
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/man/mxwarden.conf.5", top ? top : ".");
	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("cannot open %s", path);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	for (size_t i = 0; i < cfg_key_count(); i++) {
		char want[128];
		/* man: each key is a tagged paragraph ".IP key" or ".B key". */
		snprintf(want, sizeof(want), "\n.B %s\n", cfg_key_name(i));
		if (strstr(text, want) == NULL)
			fail_msg("key %s is not documented in %s", cfg_key_name(i), path);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_config_continuation_and_overrides),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_backend_tls),
		cmocka_unit_test(test_config_all_errors_reported),
		cmocka_unit_test(test_config_missing_file),
		cmocka_unit_test(test_config_keys_documented),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
