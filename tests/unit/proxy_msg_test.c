/*
 * proxy_msg_test.c - the spooled message (filter/proxy_msg.c,
 * filter/proxy_spool.c): header parsing, the engine's header edits
 * applied to the message itself, dot-stuffing (DATA) and its absence
 * (BDAT, with the exact size), re-folding of added
 * values, and the spool's move to a temporary file. The engine is
 * replaced by stubs that record what it was fed.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine.h"
#include "proxy_io.h"
#include "proxy_msg.h"
#include "proxy_spool.h"
#include "txn.h"

/* ---- engine stubs ---- */
static char fed[4096];

enum verdict_action
eng_event(struct txn *t, enum txn_event ev, struct verdict *v)
{
	(void)t;
	memset(v, 0, sizeof(*v));
	v->action = ev == TXN_EV_EOM ? VERDICT_ADD_HEADER : VERDICT_CONTINUE;
	return v->action;
}

enum verdict_action
eng_body(struct txn *t, const unsigned char *data, size_t len,
    struct verdict *v)
{
	size_t n = strlen(fed);

	(void)t;
	if (n + len + 6 < sizeof(fed)) {
		memcpy(fed + n, "BODY[", 5);
		memcpy(fed + n + 5, data, len);
		fed[n + 5 + len] = '\0';
	}
	v->action = VERDICT_CONTINUE;
	return v->action;
}

void
txn_add_header(struct txn *t, const char *name, const char *value)
{
	size_t n = strlen(fed);

	(void)t;
	snprintf(fed + n, sizeof(fed) - n, "H[%s|%s]", name, value);
}

/* ---- helpers ---- */

static void
spool_text(struct proxy_spool *sp, size_t mem, const char *text)
{
	char err[128];

	proxy_spool_init(sp, mem, "/tmp");
	assert_int_equal(proxy_spool_append(sp, text, strlen(text), err,
	    sizeof(err)), 0);
	assert_int_equal(proxy_spool_finish(sp, err, sizeof(err)), 0);
}

/* write_out - what proxy_msg_write (bdat: proxy_msg_write_bdat) sends,
 * read back from a socketpair. */
static char *
write_as(struct proxy_msg *m, struct txn *t, struct proxy_spool *sp, int bdat)
{
	int sv[2];
	struct proxy_io io;
	static char out[8192];
	ssize_t n, tot = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	proxy_io_init(&io, sv[0], 1000);
	assert_int_equal(bdat ? proxy_msg_write_bdat(m, t, sp, &io) :
	    proxy_msg_write(m, t, sp, &io), 0);
	assert_int_equal(proxy_io_flush(&io), 0);
	proxy_io_close(&io);
	while ((n = read(sv[1], out + tot, sizeof(out) - 1 - (size_t)tot)) > 0)
		tot += n;
	out[tot] = '\0';
	close(sv[1]);
	return out;
}

static char *
write_out(struct proxy_msg *m, struct txn *t, struct proxy_spool *sp)
{
	return write_as(m, t, sp, 0);
}

/* bdat_ok - out is "BDAT n LAST" CRLF and exactly n bytes equal to
 * want: no dot-stuffing, no final dot. */
static void
bdat_ok(const char *out, const char *want)
{
	char head[64];

	snprintf(head, sizeof(head), "BDAT %zu LAST\r\n", strlen(want));
	assert_memory_equal(out, head, strlen(head));
	assert_string_equal(out + strlen(head), want);
}

static const char msg1[] =
	"Received: one\r\n"
	"Authentication-Results: mx.test; forged\r\n"
	"Subject: folded\r\n"
	"\tsecond line\r\n"
	"Authentication-Results: other.test; ok\r\n"
	"\r\n"
	"body\r\n"
	".dot line\r\n";

static void
test_parse_and_eval(void **state)
{
	struct proxy_spool sp;
	struct proxy_msg m;
	struct txn t;
	struct verdict v;
	char why[128];

	(void)state;
	memset(&t, 0, sizeof(t));
	fed[0] = '\0';
	spool_text(&sp, 1 << 20, msg1);
	assert_int_equal(proxy_msg_parse(&m, &sp, 4096, why, sizeof(why)), 0);
	assert_int_equal(m.nf, 4);
	assert_string_equal(m.f[2].name, "Subject");
	assert_int_equal(proxy_msg_eval(&m, &t, &sp, &v), VERDICT_ADD_HEADER);
	assert_string_equal(fed,
	    "H[Received| one]H[Authentication-Results| mx.test; forged]"
	    "H[Subject| folded\n\tsecond line]"
	    "H[Authentication-Results| other.test; ok]"
	    "BODY[body\r\n.dot line\r\n");
	proxy_msg_free(&m);
	proxy_spool_free(&sp);
}

static void
test_write_with_edits(void **state)
{
	struct txn_hdrop ops[] = {
		{ TXN_HDR_DELETE, "authentication-results", NULL, 1 },
		{ TXN_HDR_INSERT, "Authentication-Results", " mx.test;\n\tspf=pass", 0 },
		{ TXN_HDR_ADD, "X-Spam-Status", "No, score=0.0\nEvil: injected", 0 },
		{ TXN_HDR_DELETE, "X-None", NULL, 1 },
	};
	struct proxy_spool sp;
	struct proxy_msg m;
	struct txn t;
	char why[128];

	(void)state;
	memset(&t, 0, sizeof(t));
	t.hdrop = ops;
	t.nhdrop = sizeof(ops) / sizeof(ops[0]);
	spool_text(&sp, 1 << 20, msg1);
	assert_int_equal(proxy_msg_parse(&m, &sp, 4096, why, sizeof(why)), 0);
#define EDITED \
	    "Authentication-Results: mx.test;\r\n\tspf=pass\r\n" \
	    "Received: one\r\n" \
	    "Subject: folded\r\n" \
	    "\tsecond line\r\n" \
	    "Authentication-Results: other.test; ok\r\n" \
	    "X-Spam-Status: No, score=0.0\r\n\tEvil: injected\r\n" \
	    "\r\n" \
	    "body\r\n"
	assert_string_equal(write_out(&m, &t, &sp), EDITED "..dot line\r\n.\r\n");
	bdat_ok(write_as(&m, &t, &sp, 1), EDITED ".dot line\r\n");
#undef EDITED
	proxy_msg_free(&m);
	proxy_spool_free(&sp);
}

/* No empty line: the first non-field line starts the body; a message of
 * headers only; a header block over the limit; each as DATA and as BDAT
 * (also from a file spool). */
static void
test_odd_shapes(void **state)
{
	struct proxy_spool sp;
	struct proxy_msg m;
	struct txn t;
	char why[128];

	(void)state;
	memset(&t, 0, sizeof(t));
	spool_text(&sp, 1 << 20, "Subject: x\r\nnot a header\r\n.\r\n");
	assert_int_equal(proxy_msg_parse(&m, &sp, 4096, why, sizeof(why)), 0);
	assert_int_equal(m.nf, 1);
	assert_string_equal(write_out(&m, &t, &sp),
	    "Subject: x\r\nnot a header\r\n..\r\n.\r\n");
	bdat_ok(write_as(&m, &t, &sp, 1), "Subject: x\r\nnot a header\r\n.\r\n");
	proxy_msg_free(&m);
	proxy_spool_free(&sp);

	spool_text(&sp, 1 << 20, "Subject: only\r\n");
	assert_int_equal(proxy_msg_parse(&m, &sp, 4096, why, sizeof(why)), 0);
	assert_string_equal(write_out(&m, &t, &sp), "Subject: only\r\n.\r\n");
	bdat_ok(write_as(&m, &t, &sp, 1), "Subject: only\r\n");
	proxy_msg_free(&m);
	proxy_spool_free(&sp);

	/* A spool whose last line has no line end: BDAT counts the CRLF
	 * added, as DATA adds it. */
	spool_text(&sp, 1 << 20, "Subject: x\r\n\r\nno end");
	assert_int_equal(proxy_msg_parse(&m, &sp, 4096, why, sizeof(why)), 0);
	assert_string_equal(write_out(&m, &t, &sp),
	    "Subject: x\r\n\r\nno end\r\n.\r\n");
	bdat_ok(write_as(&m, &t, &sp, 1), "Subject: x\r\n\r\nno end\r\n");
	proxy_msg_free(&m);
	proxy_spool_free(&sp);

	/* From a file spool (its size counted, its last byte read). */
	spool_text(&sp, 16, "Subject: file\r\n\r\n.a\r\nb\r\n");
	assert_true(proxy_spool_in_file(&sp));
	assert_int_equal(proxy_msg_parse(&m, &sp, 4096, why, sizeof(why)), 0);
	bdat_ok(write_as(&m, &t, &sp, 1), "Subject: file\r\n\r\n.a\r\nb\r\n");
	proxy_msg_free(&m);
	proxy_spool_free(&sp);

	spool_text(&sp, 1 << 20, "A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n");
	assert_int_equal(proxy_msg_parse(&m, &sp, 10, why, sizeof(why)), -1);
	assert_memory_equal(why, "552 5.3.4 ", 10);
	proxy_msg_free(&m);
	proxy_spool_free(&sp);
}

/* Past proxy_spool_memory the message goes to a file; reads are the same. */
static void
test_spool_file(void **state)
{
	struct proxy_spool sp;
	char line[64], back[64], err[128];

	(void)state;
	proxy_spool_init(&sp, 100, "/tmp");
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(line, sizeof(line), "line %04d\r\n", i);
		assert_int_equal(proxy_spool_append(&sp, line, (size_t)n, err,
		    sizeof(err)), 0);
	}
	assert_true(proxy_spool_in_file(&sp));
	assert_int_equal(proxy_spool_finish(&sp, err, sizeof(err)), 0);
	assert_int_equal(sp.len, 11000);
	assert_int_equal(proxy_spool_read(&sp, 11 * 999, back, sizeof(back)), 11);
	assert_memory_equal(back, "line 0999\r\n", 11);
	assert_int_equal(proxy_spool_read(&sp, 11000, back, sizeof(back)), 0);
	proxy_spool_free(&sp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_eval),
		cmocka_unit_test(test_write_with_edits),
		cmocka_unit_test(test_odd_shapes),
		cmocka_unit_test(test_spool_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
