/*
 * proxy_bepool_test.c - what the proxy's sessions share about the
 * backend (filter/proxy_bepool.c): kept connections (taken newest first,
 * only for the same backend, never once the backend has closed or
 * spoken; the oldest dropped when full) and the "taken as down" rule
 * (slow failures in a row count, fast ones and a success do not, a new
 * backend address starts afresh).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy_backend.h"
#include "proxy_bepool.h"

/* kept - a "connected" backend over a socketpair; *peer its other end. */
static void
kept(struct proxy_backend *b, const char *name, int *peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	memset(b, 0, sizeof(*b));
	proxy_io_init(&b->io, sv[0], 1000);
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->connected = 1;
	*peer = sv[1];
}

static void
test_take_give(void **state)
{
	struct proxy_bepool *pool = proxy_bepool_new(2, 60000);
	struct proxy_backend a, b, c, got;
	int pa, pb, pc;

	(void)state;
	kept(&a, "127.0.0.1:25", &pa);
	kept(&b, "127.0.0.1:25", &pb);
	kept(&c, "127.0.0.1:25", &pc);
	proxy_bepool_give(pool, &a);
	assert_int_equal(a.io.fd, -1);		/* moved into the pool */
	proxy_bepool_give(pool, &b);
	proxy_bepool_give(pool, &c);		/* full: a (oldest) dropped */
	memset(&got, 0, sizeof(got));
	assert_int_equal(proxy_bepool_take(pool, "127.0.0.1:26", &got), 0);
	assert_int_equal(proxy_bepool_take(pool, "127.0.0.1:25", &got), 1);
	/* newest first: c; its peer sees what we write */
	assert_int_equal(write(got.io.fd, "x", 1), 1);
	char ch;
	assert_int_equal(read(pc, &ch, 1), 1);
	proxy_io_close(&got.io);
	/* b's backend closes while kept: not handed out */
	close(pb);
	assert_int_equal(proxy_bepool_take(pool, "127.0.0.1:25", &got), 0);
	/* a was closed when dropped: its peer reads EOF (after QUIT) */
	char buf[64];
	ssize_t n;
	while ((n = read(pa, buf, sizeof(buf))) > 0)
		;
	assert_int_equal(n, 0);
	close(pa);
	close(pc);
	proxy_bepool_free(pool);
}

/* A kept connection on which the backend spoke (an idle timeout's 421)
 * is not handed out either. */
static void
test_spoke(void **state)
{
	struct proxy_bepool *pool = proxy_bepool_new(4, 60000);
	struct proxy_backend a, got;
	int pa;

	(void)state;
	kept(&a, "b:25", &pa);
	proxy_bepool_give(pool, &a);
	assert_int_equal(write(pa, "421 timeout\r\n", 13), 13);
	memset(&got, 0, sizeof(got));
	assert_int_equal(proxy_bepool_take(pool, "b:25", &got), 0);
	close(pa);
	proxy_bepool_free(pool);
}

static void
test_down(void **state)
{
	struct proxy_bepool *pool = proxy_bepool_new(0, 1000);
	long long d;

	(void)state;
	assert_true(proxy_bepool_is_down(pool, "x:25") == 0);
	/* fast failures (refused) never count */
	for (int i = 0; i < 10; i++)
		proxy_bepool_opened(pool, "x:25", 0, 5);
	assert_true(proxy_bepool_is_down(pool, "x:25") == 0);
	/* two slow ones, a success: the count starts again */
	proxy_bepool_opened(pool, "x:25", 0, 2000);
	proxy_bepool_opened(pool, "x:25", 0, 2000);
	proxy_bepool_opened(pool, "x:25", 1, 3);
	proxy_bepool_opened(pool, "x:25", 0, 2000);
	proxy_bepool_opened(pool, "x:25", 0, 2000);
	assert_true(proxy_bepool_is_down(pool, "x:25") == 0);
	/* the third slow one in a row: down for PROXY_BEPOOL_DOWN_MS */
	proxy_bepool_opened(pool, "x:25", 0, PROXY_BEPOOL_SLOW_MS);
	d = proxy_bepool_is_down(pool, "x:25");
	assert_true(d > PROXY_BEPOOL_DOWN_MS - 1000 && d <= PROXY_BEPOOL_DOWN_MS);
	/* another backend (a reload) is not down, and resets the state */
	assert_true(proxy_bepool_is_down(pool, "y:25") == 0);
	proxy_bepool_opened(pool, "y:25", 1, 3);
	assert_true(proxy_bepool_is_down(pool, "x:25") == 0);
	proxy_bepool_free(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_give),
		cmocka_unit_test(test_spoke),
		cmocka_unit_test(test_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
