/*
 * proxy_io_test.c - the proxy's bounded line reader (filter/proxy_io.c):
 * line classification (CRLF, bare LF, bare CR, NUL, too long), lines
 * split across reads, EOF, timeout, and output flushed before a read;
 * without waiting (PROXY_IO_NOWAIT, the event loop's way): PL_AGAIN with
 * the part read so far kept, and output the peer does not take; no
 * read bound to fail right after a reply went out.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
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
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
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

/* rdn - read a line without waiting. */
static enum proxy_line_status
rdn(struct pair *p, char *line, size_t cap, size_t max, size_t *len)
{
	return proxy_io_read_line(&p->io, line, cap, max, len, PROXY_IO_NOWAIT);
}

/* A line that arrives in pieces, without waiting: PL_AGAIN each time
 * (io->want POLLIN), then the whole line, classified over all pieces:
 * a CR at the end of one piece and LF at the start of the next is CRLF;
 * a NUL in an early piece still marks the line; a line over the limit
 * stays too long however it was cut. */
static void
test_nowait_pieces(void **state)
{
	static const struct {
		const char	*piece[4];
		enum proxy_line_status st;
		const char	*text;
	} cases[] = {
		{ { "HELO a", "bc\r\n" }, PL_OK, "HELO abc" },
		{ { "X\r", "\n" }, PL_OK, "X" },
		{ { "A\r", "B\r\n" }, PL_BARE_CR, "A\rB" },
		{ { "a", "b", "c\n" }, PL_BARE_LF, "abc" },
		{ { "0123456789", "0123456789", "01\r\n" }, PL_TOO_LONG,
		  "0123456789012345" },
	};
	struct pair p;
	char line[64];
	size_t len;

	(void)state;
	pair_open(&p);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum proxy_line_status st = PL_AGAIN;

		for (size_t k = 0; k < 4 && cases[i].piece[k] != NULL; k++) {
			assert_int_equal(rdn(&p, line, sizeof(line), 16, &len),
			    PL_AGAIN);
			assert_int_equal(p.io.want, POLLIN);
			peer_send(&p, cases[i].piece[k], strlen(cases[i].piece[k]));
		}
		st = rdn(&p, line, sizeof(line), 16, &len);
		assert_int_equal(st, cases[i].st);
		assert_string_equal(line, cases[i].text);
		assert_int_equal(len, strlen(cases[i].text));
	}
	/* EOF in the middle of a line, without waiting. */
	peer_send(&p, "half", 4);
	assert_int_equal(rdn(&p, line, sizeof(line), 16, &len), PL_AGAIN);
	close(p.peer);
	p.peer = -1;
	assert_int_equal(rdn(&p, line, sizeof(line), 16, &len), PL_EOF);
	pair_close(&p);
}

/* Output the peer does not read: flush_some writes what fits and says
 * 1 (io->want POLLOUT); a read without waiting then stops at PL_AGAIN
 * wanting POLLOUT rather than reading more; once the peer reads, the
 * rest leaves. */
static void
test_nowait_output(void **state)
{
	static char blob[4096];
	char sink[65536], line[64];
	struct pair p;
	size_t len, queued = 0, got = 0;
	ssize_t n;
	int r = 0;

	(void)state;
	memset(blob, 'x', sizeof(blob));
	pair_open(&p);
	for (int i = 0; i < 4096 && r == 0; i++) {
		assert_int_equal(proxy_io_put(&p.io, blob, sizeof(blob)), 0);
		queued += sizeof(blob);
		r = proxy_io_flush_some(&p.io);
	}
	assert_int_equal(r, 1);
	assert_int_equal(p.io.want, POLLOUT);
	peer_send(&p, "NOOP\r\nNOOP\r\n", 12);
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_AGAIN);
	assert_int_equal(p.io.want, POLLOUT);
	for (int i = 0; i < 100000 && got < queued; i++) {
		if ((n = read(p.peer, sink, sizeof(sink))) > 0)
			got += (size_t)n;
		if (proxy_io_flush_some(&p.io) < 0)
			break;
	}
	assert_int_equal(got, queued);
	assert_int_equal(proxy_io_flush_some(&p.io), 0);
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "NOOP");
	pair_close(&p);
}

/* turn - a whole reply goes out, and the peer answers it. */
static void
turn(struct pair *p, const char *reply, const char *answer)
{
	assert_int_equal(proxy_io_put(&p->io, reply, strlen(reply)), 0);
	assert_int_equal(proxy_io_flush_some(&p->io), 0);
	peer_send(p, answer, strlen(answer));
}

/* The peer's turn (turn_hints, the client side): once a whole reply
 * has gone out, a read without waiting does not try the socket (the
 * client answers only after it got the reply) and asks for POLLIN, even
 * when the answer is already there; the next read takes it. A waiting
 * read polls first and gets it at once. Input already buffered
 * (pipelined), input reported by the poller
 * (proxy_io_readable), or no turn_hints: read at once. */
static void
test_peer_turn(void **state)
{
	struct pair p;
	char line[64];
	size_t len;

	(void)state;
	pair_open(&p);
	p.io.turn_hints = 1;
	turn(&p, "250 ok\r\n", "MAIL\r\n");
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_AGAIN);
	assert_int_equal(p.io.want, POLLIN);
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "MAIL");

	turn(&p, "250 ok\r\n", "RCPT\r\n");
	assert_int_equal(rd(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "RCPT");

	turn(&p, "354 go\r\n", "x\r\n");
	proxy_io_readable(&p.io);
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "x");

	peer_send(&p, "NOOP\r\nQUIT\r\n", 12);
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_int_equal(proxy_io_put(&p.io, "250 ok\r\n", 8), 0);
	assert_int_equal(proxy_io_flush_some(&p.io), 0);
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "QUIT");

	p.io.turn_hints = 0;
	turn(&p, "221 bye\r\n", "NOOP\r\n");
	assert_int_equal(rdn(&p, line, sizeof(line), 63, &len), PL_OK);
	assert_string_equal(line, "NOOP");
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
		cmocka_unit_test(test_nowait_pieces),
		cmocka_unit_test(test_nowait_output),
		cmocka_unit_test(test_peer_turn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
