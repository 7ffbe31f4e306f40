/*
 * proxy_io_test.c - the proxy's bounded line reader (filter/proxy_io.c):
 * line classification (CRLF, bare LF, bare CR, NUL, too long), lines
 * split across reads, EOF, timeout, and output flushed before a read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy_io.h"

struct pair {
	struct proxy_io	 io;
	int		 peer;
};

static void
pair_open(struct pair *p)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	proxy_io_init(&p->io, sv[0], 1000);
	p->peer = sv[1];
}

static void
pair_close(struct pair *p)
{
	proxy_io_close(&p->io);
	if (p->peer >= 0)
		close(p->peer);
}

static void
peer_send(struct pair *p, const char *s, size_t n)
{
	assert_int_equal(write(p->peer, s, n), (ssize_t)n);
}

static enum proxy_line_status
rd(struct pair *p, char *line, size_t cap, size_t max, size_t *len)
{
	return proxy_io_read_line(&p->io, line, cap, max, len, 500);
}

/* Each input line and the status and text the reader must give. */
static void
test_classify(void **state)
{
	static const struct {
		const char	*in;
		size_t		 inlen;
		enum proxy_line_status st;
		const char	*text;
	} cases[] = {
		{ "HELO a\r\n", 8, PL_OK, "HELO a" },
		{ "\r\n", 2, PL_OK, "" },
		{ "bare lf\n", 8, PL_BARE_LF, "bare lf" },
		{ "a\rb\r\n", 5, PL_BARE_CR, "a\rb" },
		{ "cr cr\r\r\n", 8, PL_BARE_CR, "cr cr\r" },
		{ "n\0l\r\n", 5, PL_NUL, NULL },
		{ ".\r.\n", 4, PL_BARE_LF, ".\r." },	/* LF wins over CR */
		{ "0123456789\r\n", 12, PL_TOO_LONG, NULL },
		{ "012345678\r\n", 11, PL_OK, "012345678" },
	};
	char line[10];
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pair p;

		pair_open(&p);
		peer_send(&p, cases[i].in, cases[i].inlen);
		assert_int_equal(rd(&p, line, sizeof(line), 9, &len), cases[i].st);
		if (cases[i].text != NULL) {
			assert_int_equal(len, strlen(cases[i].text));
			assert_memory_equal(line, cases[i].text, len);
		}
		pair_close(&p);
	}
}

/* A too-long line is dropped to its end: the next line is intact. */
static void
test_too_long_resyncs(void **state)
{
	struct pair p;
	char line[8], big[5000];
	size_t len;

	(void)state;
	pair_open(&p);
	memset(big, 'x', sizeof(big));
	peer_send(&p, big, sizeof(big));
	peer_send(&p, "\r\nQUIT\r\n", 8);
	assert_int_equal(rd(&p, line, sizeof(line), 7, &len), PL_TOO_LONG);
	assert_int_equal(rd(&p, line, sizeof(line), 7, &len), PL_OK);
	assert_string_equal(line, "QUIT");
	pair_close(&p);
}

/* Pipelined lines in one write; a line split over writes; CR and LF in
 * different reads; then EOF with a partial line. */
static void
test_split_and_eof(void **state)
{
	struct pair p;
	char line[64];
	size_t len;

	(void)state;
	pair_open(&p);
	peer_send(&p, "A\r\nB\r\nC", 7);
	assert_int_equal(rd(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "A");
	assert_true(proxy_io_pending(&p.io) > 0);
	assert_int_equal(rd(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "B");
	peer_send(&p, "D\r", 2);
	peer_send(&p, "\n", 1);
	assert_int_equal(rd(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "CD");
	peer_send(&p, "partial", 7);
	close(p.peer);
	p.peer = -1;
	assert_int_equal(rd(&p, line, sizeof(line), 63, &len), PL_EOF);
	pair_close(&p);
}

static void
test_timeout_and_flush(void **state)
{
	struct pair p;
	char line[64], got[64];
	size_t len;

	(void)state;
	pair_open(&p);
	assert_int_equal(proxy_io_printf(&p.io, "250 %s\r\n", "ok"), 0);
	/* Nothing to read: the queued reply still leaves, then timeout. */
	assert_int_equal(proxy_io_read_line(&p.io, line, sizeof(line), 63, &len,
	    100), PL_TIMEOUT);
	assert_int_equal(read(p.peer, got, sizeof(got)), 8);
	assert_memory_equal(got, "250 ok\r\n", 8);
	pair_close(&p);
}

/* STARTTLS: what a client pipelined after the command is dropped, and
 * the raw access the PROXY header reader uses. */
static void
test_discard_peek_consume(void **state)
{
	struct pair p;
	char line[64];
	const unsigned char *raw;
	size_t len, n;

	(void)state;
	pair_open(&p);
	peer_send(&p, "STARTTLS\r\nEHLO injected\r\n", 26);
	assert_int_equal(rd(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "STARTTLS");
	assert_int_equal(proxy_io_discard_input(&p.io), 16);
	assert_int_equal(proxy_io_pending(&p.io), 0);
	assert_int_equal(proxy_io_discard_input(&p.io), 0);

	peer_send(&p, "PROXY x\r\nNEXT\r\n", 15);
	raw = proxy_io_peek(&p.io, &n);
	assert_int_equal(n, 0);
	assert_true(proxy_io_read_more(&p.io, 500) > 0);
	raw = proxy_io_peek(&p.io, &n);
	assert_int_equal(n, 15);
	assert_memory_equal(raw, "PROXY x\r\n", 9);
	proxy_io_consume(&p.io, 9);
	assert_int_equal(rd(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "NEXT");
	/* Nothing more: read_more times out. */
	assert_int_equal(proxy_io_read_more(&p.io, 50), -1);
	pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_too_long_resyncs),
		cmocka_unit_test(test_split_and_eof),
		cmocka_unit_test(test_timeout_and_flush),
		cmocka_unit_test(test_discard_peek_consume),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
