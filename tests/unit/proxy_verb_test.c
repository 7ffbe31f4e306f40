/*
 * proxy_verb_test.c - the proxy's verb table and argument parsers
 * (filter/proxy_verb.c): lookup, allowed states, MAIL/RCPT paths, MAIL
 * parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proxy_verb.h"

static void
test_lookup(void **state)
{
	static const struct {
		const char		*line;
		enum proxy_verb_id	 id;
		const char		*arg;
	} cases[] = {
		{ "EHLO client.test", PV_EHLO, "client.test" },
		{ "ehlo   client.test", PV_EHLO, "client.test" },
		{ "MAIL FROM:<a@b>", PV_MAIL, "FROM:<a@b>" },
		{ "DATA", PV_DATA, "" },
		{ "QUIT", PV_QUIT, "" },
		{ "GET / HTTP/1.1", PV_NON_SMTP, "/ HTTP/1.1" },
		{ "CONNECT 1.2.3.4:25 HTTP/1.0", PV_NON_SMTP, "1.2.3.4:25 HTTP/1.0" },
		{ "DATAX", PV_UNKNOWN, "" },
		{ "XCLIENT ADDR=1.2.3.4", PV_UNKNOWN, "ADDR=1.2.3.4" },
		{ "", PV_UNKNOWN, "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *arg = NULL;
		const struct proxy_verb *v = proxy_verb_lookup(cases[i].line, &arg);

		assert_non_null(v);
		assert_int_equal(v->id, cases[i].id);
		assert_string_equal(arg, cases[i].arg);
	}
}

static void
test_states(void **state)
{
	const char *arg;
	const struct proxy_verb *mail = proxy_verb_lookup("MAIL", &arg);
	const struct proxy_verb *rcpt = proxy_verb_lookup("RCPT", &arg);
	const struct proxy_verb *data = proxy_verb_lookup("DATA", &arg);
	const struct proxy_verb *quit = proxy_verb_lookup("QUIT", &arg);
	const struct proxy_verb *ehlo = proxy_verb_lookup("EHLO", &arg);

	(void)state;
	assert_false(proxy_verb_allowed(mail, PS_GREET));
	assert_true(proxy_verb_allowed(mail, PS_READY));
	assert_false(proxy_verb_allowed(mail, PS_MAIL));
	assert_false(proxy_verb_allowed(rcpt, PS_READY));
	assert_true(proxy_verb_allowed(rcpt, PS_MAIL));
	assert_true(proxy_verb_allowed(rcpt, PS_RCPT));
	assert_false(proxy_verb_allowed(data, PS_MAIL));
	assert_true(proxy_verb_allowed(data, PS_RCPT));
	assert_true(proxy_verb_allowed(quit, PS_REJECTED));
	assert_false(proxy_verb_allowed(ehlo, PS_REJECTED));
	assert_false(proxy_verb_allowed(ehlo, PS_DATA));
	assert_true(ehlo->flags & PVF_ARG_NEEDED);
	assert_true(data->flags & PVF_ARG_NONE);
}

/* STARTTLS only outside a transaction, AUTH only after EHLO and outside
 * one, a PROXY header line from a client is not SMTP. */
static void
test_tls_auth_states(void **state)
{
	const char *arg;
	const struct proxy_verb *tls = proxy_verb_lookup("STARTTLS", &arg);
	const struct proxy_verb *auth = proxy_verb_lookup("AUTH PLAIN x", &arg);
	const struct proxy_verb *pp = proxy_verb_lookup("PROXY TCP4 1.2.3.4 5.6.7.8 1 2",
	    &arg);

	(void)state;
	assert_int_equal(tls->id, PV_STARTTLS);
	assert_true(proxy_verb_allowed(tls, PS_GREET));
	assert_true(proxy_verb_allowed(tls, PS_READY));
	assert_false(proxy_verb_allowed(tls, PS_MAIL));
	assert_false(proxy_verb_allowed(tls, PS_RCPT));
	assert_true(tls->flags & PVF_ARG_NONE);
	assert_true(tls->flags & PVF_BEFORE_TLS);
	assert_int_equal(auth->id, PV_AUTH);
	assert_false(proxy_verb_allowed(auth, PS_GREET));
	assert_true(proxy_verb_allowed(auth, PS_READY));
	assert_false(proxy_verb_allowed(auth, PS_MAIL));
	assert_false(auth->flags & PVF_BEFORE_TLS);
	assert_int_equal(pp->id, PV_NON_SMTP);
}

static void
test_paths(void **state)
{
	static const struct {
		const char	*arg;
		const char	*kw;
		int		 rc;
		const char	*addr;
		const char	*params;
	} cases[] = {
		{ "FROM:<a@b.test>", "FROM:", 0, "a@b.test", "" },
		{ "from: <a@b.test> SIZE=10", "FROM:", 0, "a@b.test", "SIZE=10" },
		{ "FROM:<>", "FROM:", 0, "", "" },
		{ "TO:<\"x y\"@b.test>", "TO:", 0, "\"x y\"@b.test", "" },
		{ "TO:<\"x>y\"@b.test>", "TO:", 0, "\"x>y\"@b.test", "" },
		{ "FROM:a@b.test", "FROM:", -1, NULL, NULL },
		{ "FROM:<a@b.test", "FROM:", -1, NULL, NULL },
		{ "FROM:<a b@c>", "FROM:", -1, NULL, NULL },
		{ "FROM:<a@b>x", "FROM:", -1, NULL, NULL },
		{ "TO:<a@b>", "FROM:", -1, NULL, NULL },
		{ "TO:<a\x01@b>", "TO:", -1, NULL, NULL },
	};
	char addr[PROXY_PATH_MAX + 1], why[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *params = NULL;
		int rc = proxy_parse_path(cases[i].arg, cases[i].kw, addr,
		    sizeof(addr), &params, why, sizeof(why));

		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_string_equal(addr, cases[i].addr);
			assert_string_equal(params, cases[i].params);
		} else {
			assert_true(why[0] != '\0');
		}
	}
}

static void
test_path_too_long(void **state)
{
	char arg[600], addr[PROXY_PATH_MAX + 1], why[128];
	const char *params;

	(void)state;
	memcpy(arg, "TO:<", 4);
	memset(arg + 4, 'a', 300);
	memcpy(arg + 304, "@b>", 4);
	assert_int_equal(proxy_parse_path(arg, "TO:", addr, sizeof(addr), &params,
	    why, sizeof(why)), -1);
	assert_string_equal(why, "Address too long");
}

static void
test_mail_params(void **state)
{
	char out[256], why[128];
	unsigned long long size;

	(void)state;
	assert_int_equal(proxy_mail_params("", &size, out, sizeof(out), why,
	    sizeof(why)), 0);
	assert_string_equal(out, "");
	assert_int_equal(proxy_mail_params("size=1234 body=8bitmime SMTPUTF8",
	    &size, out, sizeof(out), why, sizeof(why)), 0);
	assert_int_equal(size, 1234);
	assert_string_equal(out, " SIZE=1234 BODY=8BITMIME SMTPUTF8");
	assert_int_equal(proxy_mail_params("SIZE=12x", &size, out, sizeof(out),
	    why, sizeof(why)), -1);
	assert_int_equal(proxy_mail_params("RET=FULL", &size, out, sizeof(out),
	    why, sizeof(why)), -1);
	assert_string_equal(why, "555 5.5.4 Unsupported option: RET");
	assert_int_equal(proxy_mail_params("BODY=BINARYMIME", &size, out,
	    sizeof(out), why, sizeof(why)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_tls_auth_states),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_mail_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
