/*
 * dkim_test.c - unit tests of policy/dkim.c.
 *
 * Messages are signed at test time by real signers (tests/dkim/sign:
 * Mail::DKIM for rsa-sha256, dkimpy for ed25519-sha256) with keys that
 * tests/dkim/keys generates in a temporary directory; the public keys
 * are served by the in-memory resolver (dns_new_static). Each message is
 * fed to chk_dkim_* the way the engine does: raw header values, then the
 * body in small CRLF chunks.
 *
 * Needs MXW_TOP (the source tree; default ".") for the scripts; every
 * test skips with a reason when key generation is not possible.
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

#include "buf.h"
#include "dkim.h"
#include "dkim_keycache.h"
#include "dns.h"
#include "txn.h"
#include "util.h"

static char	 tmpdir[] = "/tmp/mxw-dkim-test.XXXXXX";
static const char *top;
static char	*rsa_txt, *ed_txt;
static int	 ready;		/* keys made */
static struct chk_dkim *cur_c;	/* of the last run_msg() */
static struct dns *cur_d;

static const char base_msg[] =
    "From: Alice <alice@dkim.test>\n"
    "To: bob@example.test\n"
    "Subject: quarterly report\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
    "Message-ID: <1@dkim.test>\n"
    "\n"
    "Hello Bob,\n"
    "\n"
    "the numbers are in.\n";

/* slurp - a whole file, NUL-terminated; NULL on error. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b, 1 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) < 0)
			break;
	fclose(f);
	if (b.data == NULL)
		return xstrdup("");
	return b.data;
}

static void
spew(const char *path, const char *s)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(s, 1, strlen(s), f), strlen(s));
	assert_int_equal(fclose(f), 0);
}

/* sign - run tests/dkim/sign; env may be NULL or "VAR=value". */
static char *
sign(const char *env, const char *alg, const char *dom, const char *sel,
    const char *msg)
{
	char in[300], out[300], cmd[1200];

	snprintf(in, sizeof(in), "%s/in.eml", tmpdir);
	snprintf(out, sizeof(out), "%s/out.eml", tmpdir);
	spew(in, msg);
	assert_int_equal(str_fmt(cmd, sizeof(cmd),
	    "%s '%s/tests/dkim/sign' '%s' %s %s %s < '%s' > '%s'",
	    env != NULL ? env : "", top, tmpdir, alg, dom, sel, in, out), 0);
	assert_int_equal(system(cmd), 0);
	return slurp(out);
}

static int
group_setup(void **state)
{
	char cmd[600], path[300];

	(void)state;
	top = getenv("MXW_TOP");
	if (top == NULL || *top == '\0')
		top = ".";
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (str_fmt(cmd, sizeof(cmd), "'%s/tests/dkim/keys' '%s' >/dev/null "
	    "2>&1", top, tmpdir) < 0 || system(cmd) != 0)
		return 0;	/* tests skip */
	snprintf(path, sizeof(path), "%s/keys/rsa.txt", tmpdir);
	rsa_txt = slurp(path);
	snprintf(path, sizeof(path), "%s/keys/ed.txt", tmpdir);
	ed_txt = slurp(path);
	ready = rsa_txt != NULL && ed_txt != NULL;
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[300];

	(void)state;
	free(rsa_txt);
	free(ed_txt);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

#define NEED_KEYS() do {						\
	if (!ready) {							\
		print_message("keys not made: tests/dkim/keys failed "	\
		    "or MXW_TOP unset\n");				\
		skip();							\
	}								\
} while (0)

/* The resolver every test uses. */
static struct dns *
test_dns(void)
{
	struct dns_static_rr tab[] = {
		{ "rsa._domainkey.dkim.test", DNS_T_TXT, rsa_txt, DNS_OK },
		{ "ed._domainkey.dkim.test", DNS_T_TXT, ed_txt, DNS_OK },
		{ "rsa._domainkey.other.test", DNS_T_TXT, rsa_txt, DNS_OK },
		{ "revoked._domainkey.dkim.test", DNS_T_TXT,
		    "v=DKIM1; k=rsa; p=", DNS_OK },
		{ "junk._domainkey.dkim.test", DNS_T_TXT,
		    "v=DKIM1; k=rsa; p=bm90IGEga2V5", DNS_OK },
		{ "tmo._domainkey.dkim.test", 0, NULL, DNS_TIMEOUT },
		{ "sf._domainkey.dkim.test", 0, NULL, DNS_SERVFAIL },
		{ "dkim.test", DNS_T_A, "127.0.0.1", DNS_OK },
	};
	struct dns *d = dns_new_static(tab, ARRAY_LEN(tab));

	assert_non_null(d);
	return d;
}

/*
 * run_msg - feed msg (LF or CRLF) to a new chk_dkim as the engine does
 * and return the txn (free with done()).
 */
static struct txn *
run_msg(const char *msg)
{
	struct txn *t = xcalloc(1, sizeof(*t));
	struct dns *d = test_dns();
	char err[128] = "";
	struct chk_dkim *c = chk_dkim_new(d, err, sizeof(err));
	const char *p = msg, *eol, *colon;
	struct buf body, val;
	char *name;
	size_t i;

	assert_non_null(c);
	str_copy(t->id, "TEST", sizeof(t->id));
	/* Header fields: a line not starting with WSP opens a field. */
	while (*p != '\0' && *p != '\n' && !(p[0] == '\r' && p[1] == '\n')) {
		colon = strchr(p, ':');
		assert_non_null(colon);
		name = xstrndup(p, (size_t)(colon - p));
		buf_init(&val, 1 << 20);
		p = colon + 1;
		for (;;) {
			eol = strchr(p, '\n');
			assert_non_null(eol);
			assert_int_equal(buf_append(&val, p,
			    (size_t)(eol + 1 - p)), 0);
			p = eol + 1;
			if (*p != ' ' && *p != '\t')
				break;
		}
		/* strip the field's own line end */
		val.len -= val.data[val.len - 2] == '\r' ? 2 : 1;
		val.data[val.len] = '\0';
		chk_dkim_header(c, t, name, val.data);
		free(name);
		buf_free(&val);
	}
	chk_dkim_eoh(c, t);
	p += *p == '\r' ? 2 : 1;
	buf_init(&body, 1 << 20);
	for (; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			assert_int_equal(buf_append(&body, "\r\n", 2), 0);
		else
			assert_int_equal(buf_append(&body, p, 1), 0);
	}
	for (i = 0; i < body.len; i += 7)
		chk_dkim_body(c, t, (const unsigned char *)body.data + i,
		    body.len - i < 7 ? body.len - i : 7);
	buf_free(&body);
	chk_dkim_eom(c, t);
	/* the library handle must outlive the txn state: done() frees */
	cur_c = c;
	cur_d = d;
	return t;
}

static void
done(struct txn *t)
{
	chk_dkim_txn_free(t);
	chk_dkim_txn_free(t);	/* idempotent */
	assert_null(t->dkim);
	assert_int_equal(t->ndkim, 0);
	assert_null(t->dkim_state);
	for (size_t i = 0; i < t->nsym; i++) {
		free(t->sym[i].name);
		free(t->sym[i].detail);
	}
	free(t->sym);
	free(t);
	chk_dkim_free(cur_c);
	dns_free(cur_d);
	cur_c = NULL;
	cur_d = NULL;
}

/* find - the result for d=/s=, or fail the test. */
static const struct txn_dkim_sig *
find(const struct txn *t, const char *d, const char *s)
{
	for (size_t i = 0; i < t->ndkim; i++)
		if (strcmp(t->dkim[i].domain, d) == 0 &&
		    strcmp(t->dkim[i].selector, s) == 0)
			return &t->dkim[i];
	fail_msg("no result for d=%s s=%s", d, s);
	return NULL;
}

static void
expect_one(const struct txn *t, enum chk_res r, const char *sym,
    const char *reason_part)
{
	assert_int_equal(t->ndkim, 1);
	if (t->dkim[0].res != r)
		fail_msg("result %s, expected %s (reason: %s)",
		    chk_res_name(t->dkim[0].res), chk_res_name(r),
		    t->dkim[0].reason ? t->dkim[0].reason : "-");
	assert_true(txn_has_symbol(t, sym));
	if (reason_part == NULL)
		assert_null(t->dkim[0].reason);
	else {
		assert_non_null(t->dkim[0].reason);
		assert_non_null(strstr(t->dkim[0].reason, reason_part));
	}
}

static void
test_rsa_pass(void **state)
{
	char *m;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "rsa-sha256", "dkim.test", "rsa", base_msg);
	t = run_msg(m);
	expect_one(t, CHK_PASS, "DKIM_PASS", NULL);
	assert_string_equal(t->dkim[0].domain, "dkim.test");
	assert_string_equal(t->dkim[0].selector, "rsa");
	assert_string_equal(t->dkim[0].algorithm, "rsa-sha256");
	assert_int_equal(strlen(t->dkim[0].b), 8);
	assert_non_null(strstr(m, t->dkim[0].b));
	assert_false(txn_has_symbol(t, "DKIM_FAIL"));
	assert_false(txn_has_symbol(t, "DKIM_NONE"));
	done(t);
	free(m);
}

static void
test_rsa_pass_crlf(void **state)
{
	struct buf b;
	char *m;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	buf_init(&b, 1 << 16);
	for (const char *p = base_msg; *p != '\0'; p++)
		assert_int_equal(*p == '\n' ? buf_puts(&b, "\r\n") :
		    buf_append(&b, p, 1), 0);
	m = sign(NULL, "rsa-sha256", "dkim.test", "rsa", b.data);
	buf_free(&b);
	t = run_msg(m);
	expect_one(t, CHK_PASS, "DKIM_PASS", NULL);
	done(t);
	free(m);
}

static void
test_ed25519_pass(void **state)
{
	char *m;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "ed25519-sha256", "dkim.test", "ed", base_msg);
	t = run_msg(m);
	expect_one(t, CHK_PASS, "DKIM_PASS", NULL);
	assert_string_equal(t->dkim[0].algorithm, "ed25519-sha256");
	assert_string_equal(t->dkim[0].selector, "ed");
	done(t);
	free(m);
}

/* replace - a copy of s with the first "from" replaced by "to". */
static char *
replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);

	assert_non_null(p);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static void
test_body_altered(void **state)
{
	char *m, *m2;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "rsa-sha256", "dkim.test", "rsa", base_msg);
	m2 = replace(m, "the numbers are in.", "the numbers are out.");
	t = run_msg(m2);
	expect_one(t, CHK_FAIL, "DKIM_FAIL", "body hash");
	assert_false(txn_has_symbol(t, "DKIM_PASS"));
	done(t);
	free(m);
	free(m2);
}

static void
test_ed25519_body_altered(void **state)
{
	char *m, *m2;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "ed25519-sha256", "dkim.test", "ed", base_msg);
	m2 = replace(m, "Hello Bob", "Hello Eve");
	t = run_msg(m2);
	expect_one(t, CHK_FAIL, "DKIM_FAIL", "body hash");
	done(t);
	free(m);
	free(m2);
}

static void
test_header_altered(void **state)
{
	char *m, *m2;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "rsa-sha256", "dkim.test", "rsa", base_msg);
	m2 = replace(m, "Subject: quarterly report", "Subject: quarterly loss");
	t = run_msg(m2);
	expect_one(t, CHK_FAIL, "DKIM_FAIL", "signature mismatch");
	done(t);
	free(m2);
	/* ed25519 too */
	free(m);
	m = sign(NULL, "ed25519-sha256", "dkim.test", "ed", base_msg);
	m2 = replace(m, "From: Alice <alice@dkim.test>",
	    "From: Mallory <alice@dkim.test>");
	t = run_msg(m2);
	expect_one(t, CHK_FAIL, "DKIM_FAIL", "signature mismatch");
	done(t);
	free(m);
	free(m2);
}

static void
test_revoked(void **state)
{
	char *m;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "rsa-sha256", "dkim.test", "revoked", base_msg);
	t = run_msg(m);
	expect_one(t, CHK_FAIL, "DKIM_FAIL", "revoked");
	done(t);
	free(m);
}

static void
test_no_key(void **state)
{
	char *m;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "rsa-sha256", "dkim.test", "nokey", base_msg);
	t = run_msg(m);
	expect_one(t, CHK_PERMERROR, "DKIM_PERMERROR", "no key");
	assert_string_equal(t->sym[0].detail, "d=dkim.test");
	done(t);
	free(m);
	/* a key record that does not decode */
	m = sign(NULL, "rsa-sha256", "dkim.test", "junk", base_msg);
	t = run_msg(m);
	expect_one(t, CHK_PERMERROR, "DKIM_PERMERROR", "");
	done(t);
	free(m);
}

static void
test_key_timeout(void **state)
{
	char *m;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign(NULL, "rsa-sha256", "dkim.test", "tmo", base_msg);
	t = run_msg(m);
	expect_one(t, CHK_TEMPERROR, "DKIM_TEMPERROR", "timeout");
	done(t);
	free(m);
	m = sign(NULL, "ed25519-sha256", "dkim.test", "sf", base_msg);
	t = run_msg(m);
	expect_one(t, CHK_TEMPERROR, "DKIM_TEMPERROR", "servfail");
	done(t);
	free(m);
}

static void
test_expired(void **state)
{
	char *m;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m = sign("DKIM_SIGN_EXPIRED=1", "rsa-sha256", "dkim.test", "rsa",
	    base_msg);
	assert_non_null(strstr(m, "x="));
	t = run_msg(m);
	expect_one(t, CHK_FAIL, "DKIM_FAIL", "expired");
	done(t);
	free(m);
}

static void
test_no_signature(void **state)
{
	struct txn *t;

	(void)state;
	t = run_msg(base_msg);
	assert_int_equal(t->ndkim, 0);
	assert_true(txn_has_symbol(t, "DKIM_NONE"));
	assert_int_equal(t->nsym, 1);
	done(t);
}

static void
test_garbage(void **state)
{
	static const char *const garbage[] = {
		"DKIM-Signature: garbage\n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=dkim.test; s=rsa\n",
		"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
		    "d=dkim.test; s=rsa; h=from; bh=!!!; b=!!!\n",
		"DKIM-Signature: v=9; a=nope-sha0; d=; s=; h=; bh=; b=\n",
		"DKIM-Signature: ;;;;==;=\n",
		"DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; "
		    "d=dkim.test; s=rsa; h=subject; bh=AAAA; b=AAAA\n",
		"DKIM-Signature: \n",
		"DKIM-Signature: v=1; a=rsa-sha256; d=..; s=a b; h=from; "
		    "bh=AAAA; b=AAAA\n",
	};
	char *m;
	struct txn *t;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(garbage); i++) {
		m = xasprintf("%s%s", garbage[i], base_msg);
		t = run_msg(m);
		if (t->ndkim != 1 || t->dkim[0].res != CHK_PERMERROR)
			fail_msg("garbage %zu: %zu results, first %s", i,
			    t->ndkim, t->ndkim ?
			    chk_res_name(t->dkim[0].res) : "-");
		assert_true(txn_has_symbol(t, "DKIM_PERMERROR"));
		assert_false(txn_has_symbol(t, "DKIM_PASS"));
		assert_non_null(t->dkim[0].reason);
		done(t);
		free(m);
	}
}

static void
test_two_signatures(void **state)
{
	char *m1, *m2;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	/* good rsa + revoked: pass and fail */
	m1 = sign(NULL, "rsa-sha256", "dkim.test", "rsa", base_msg);
	m2 = sign(NULL, "rsa-sha256", "dkim.test", "revoked", m1);
	t = run_msg(m2);
	assert_int_equal(t->ndkim, 2);
	assert_int_equal(find(t, "dkim.test", "rsa")->res, CHK_PASS);
	assert_int_equal(find(t, "dkim.test", "revoked")->res, CHK_FAIL);
	assert_true(txn_has_symbol(t, "DKIM_PASS"));
	assert_true(txn_has_symbol(t, "DKIM_FAIL"));
	done(t);
	free(m1);
	free(m2);
	/* good ed25519 + third party with no key: pass and permerror */
	m1 = sign(NULL, "ed25519-sha256", "dkim.test", "ed", base_msg);
	m2 = sign(NULL, "rsa-sha256", "nokey.test", "rsa", m1);
	t = run_msg(m2);
	assert_int_equal(t->ndkim, 2);
	assert_int_equal(find(t, "dkim.test", "ed")->res, CHK_PASS);
	assert_int_equal(find(t, "nokey.test", "rsa")->res, CHK_PERMERROR);
	assert_true(txn_has_symbol(t, "DKIM_PERMERROR"));
	done(t);
	free(m1);
	free(m2);
	/* good signature + garbage one */
	m1 = sign(NULL, "rsa-sha256", "other.test", "rsa", base_msg);
	m2 = xasprintf("DKIM-Signature: v=1; d=dkim.test; garbage\n%s", m1);
	t = run_msg(m2);
	assert_int_equal(t->ndkim, 2);
	assert_int_equal(find(t, "other.test", "rsa")->res, CHK_PASS);
	assert_true(txn_has_symbol(t, "DKIM_PERMERROR"));
	done(t);
	free(m1);
	free(m2);
}

static void
test_signature_bound(void **state)
{
	char *m, *next;
	struct txn *t;
	int i;

	(void)state;
	NEED_KEYS();
	m = xstrdup(base_msg);
	for (i = 0; i < CHK_DKIM_MAX_SIGS + 3; i++) {
		next = sign(NULL, "rsa-sha256", "dkim.test", "rsa", m);
		free(m);
		m = next;
	}
	t = run_msg(m);
	assert_int_equal(t->ndkim, CHK_DKIM_MAX_SIGS);
	for (size_t k = 0; k < t->ndkim; k++)
		assert_int_equal(t->dkim[k].res, CHK_PASS);
	done(t);
	free(m);
}

/* libopendkim's key decoding goes through the cache: a key published
 * under two names is decoded once and verifies both signatures; a key
 * that does not decode is not kept; freeing the library empties it. */
static void
test_key_cache(void **state)
{
	char *m1, *m2, *m3;
	struct txn *t;

	(void)state;
	NEED_KEYS();
	m1 = sign(NULL, "rsa-sha256", "dkim.test", "rsa", base_msg);
	m2 = sign(NULL, "rsa-sha256", "other.test", "rsa", m1);
	m3 = sign(NULL, "rsa-sha256", "dkim.test", "junk", m2);
	chk_dkim_keycache_clear();
	t = run_msg(m3);
	assert_int_equal(t->ndkim, 3);
	assert_int_equal(find(t, "dkim.test", "rsa")->res, CHK_PASS);
	assert_int_equal(find(t, "other.test", "rsa")->res, CHK_PASS);
	assert_int_equal(find(t, "dkim.test", "junk")->res, CHK_PERMERROR);
	assert_int_equal(chk_dkim_keycache_size(), 1);
	done(t);
	assert_int_equal(chk_dkim_keycache_size(), 0);
	free(m1);
	free(m2);
	free(m3);
}

static void
test_free_unused(void **state)
{
	struct txn t;

	(void)state;
	memset(&t, 0, sizeof(t));
	chk_dkim_txn_free(&t);
	chk_dkim_txn_free(&t);
	assert_null(t.dkim_state);
	chk_dkim_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_pass),
		cmocka_unit_test(test_rsa_pass_crlf),
		cmocka_unit_test(test_ed25519_pass),
		cmocka_unit_test(test_body_altered),
		cmocka_unit_test(test_ed25519_body_altered),
		cmocka_unit_test(test_header_altered),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_no_key),
		cmocka_unit_test(test_key_timeout),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_no_signature),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_two_signatures),
		cmocka_unit_test(test_signature_bound),
		cmocka_unit_test(test_key_cache),
		cmocka_unit_test(test_free_unused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
