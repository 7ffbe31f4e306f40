/*
 * dns_cache_test.c - unit tests of the resolver's answer cache
 * (policy/dns_cache.h, implemented in policy/dns.c): what is kept, for
 * how long, that copies are deep, and concurrent use. Answers to keep
 * come from the static resolver.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "dns_cache.h"
#include "log.h"
#include "util.h"

static const struct dns_static_rr table[] = {
	{ "host.example", DNS_T_A, "192.0.2.1", DNS_OK },
	{ "host.example", DNS_T_A, "192.0.2.2", DNS_OK },
	{ "example", DNS_T_TXT, "v=spf1 -all", DNS_OK },
	{ "example", DNS_T_MX, "10 mx.example", DNS_OK },
	{ "fail.example", 0, NULL, DNS_SERVFAIL },
	{ "slow.example", 0, NULL, DNS_TIMEOUT },
};

struct fx {
	struct dns		*d;
	struct dns_cache	*c;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	log_init("test", 1, LOG_LVL_ERR);
	f->d = dns_new_static(table, sizeof(table) / sizeof(table[0]));
	f->c = dns_cache_new();
	assert_non_null(f->d);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	dns_cache_free(f->c);
	dns_free(f->d);
	free(f);
	return 0;
}

/* put - the static answer for name/type into the cache at now. */
static void
put(struct fx *f, const char *name, uint16_t type, int64_t now, uint32_t ttl)
{
	struct dns_result r;

	dns_query(f->d, name, type, &r);
	dns_cache_put(f->c, name, type, now, ttl, &r);
	dns_result_free(&r);
}

static int
hit(struct fx *f, const char *name, uint16_t type, int64_t now)
{
	struct dns_result r;
	int h;

	memset(&r, 0, sizeof(r));
	h = dns_cache_get(f->c, name, type, now, &r);
	dns_result_free(&r);
	return h;
}

static void
test_deep_copy(void **state)
{
	struct fx *f = *state;
	struct dns_result r;

	assert_int_equal(hit(f, "host.example", DNS_T_A, 1000), 0);
	put(f, "host.example", DNS_T_A, 1000, 30);
	/* the original is freed by put(): the copy must stand alone */
	memset(&r, 0, sizeof(r));
	assert_int_equal(dns_cache_get(f->c, "HOST.example", DNS_T_A, 1001, &r), 1);
	assert_int_equal(r.status, DNS_OK);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.rr[0].text, "192.0.2.1");
	assert_string_equal(r.rr[1].text, "192.0.2.2");
	assert_int_equal(r.rr[0].rdlen, 4);
	assert_memory_equal(r.rr[0].rdata, "\xc0\x00\x02\x01", 4);
	/* the caller owns its copy: changing it changes nothing kept */
	r.rr[0].text[0] = 'X';
	dns_result_free(&r);
	memset(&r, 0, sizeof(r));
	assert_int_equal(dns_cache_get(f->c, "host.example", DNS_T_A, 1002, &r), 1);
	assert_string_equal(r.rr[0].text, "192.0.2.1");
	dns_result_free(&r);
	/* another type of the same name is another answer */
	assert_int_equal(hit(f, "host.example", DNS_T_AAAA, 1002), 0);
	put(f, "example", DNS_T_MX, 1000, 30);
	memset(&r, 0, sizeof(r));
	assert_int_equal(dns_cache_get(f->c, "example", DNS_T_MX, 1002, &r), 1);
	assert_int_equal(r.rr[0].pref, 10);
	assert_string_equal(r.rr[0].text, "mx.example");
	dns_result_free(&r);
}

static void
test_expiry(void **state)
{
	struct fx *f = *state;

	put(f, "example", DNS_T_TXT, 10000, 5);
	assert_int_equal(hit(f, "example", DNS_T_TXT, 14999), 1);
	{
		/* the records' TTLs (300 in the static table) count down */
		struct dns_result r;

		memset(&r, 0, sizeof(r));
		assert_int_equal(dns_cache_get(f->c, "example", DNS_T_TXT, 12999,
		    &r), 1);
		assert_int_equal(r.rr[0].ttl, 298);
		dns_result_free(&r);
	}
	assert_int_equal(hit(f, "example", DNS_T_TXT, 15000), 0);
	/* a long TTL is cut to DNS_CACHE_MAX_TTL */
	put(f, "example", DNS_T_TXT, 10000, 86400);
	assert_int_equal(hit(f, "example", DNS_T_TXT,
	    10000 + DNS_CACHE_MAX_TTL * 1000 - 1), 1);
	assert_int_equal(hit(f, "example", DNS_T_TXT,
	    10000 + DNS_CACHE_MAX_TTL * 1000), 0);
	/* TTL 0: not kept at all */
	put(f, "host.example", DNS_T_A, 10000, 0);
	assert_int_equal(hit(f, "host.example", DNS_T_A, 10000), 0);
	/* a newer answer replaces the kept one */
	put(f, "example", DNS_T_TXT, 20000, 1);
	put(f, "example", DNS_T_TXT, 20500, 10);
	assert_int_equal(hit(f, "example", DNS_T_TXT, 30000), 1);
}

static void
test_what_is_kept(void **state)
{
	struct fx *f = *state;
	struct dns_result r;

	/* negative answers are final: kept */
	put(f, "nowhere.example", DNS_T_A, 0, 30);
	memset(&r, 0, sizeof(r));
	assert_int_equal(dns_cache_get(f->c, "nowhere.example", DNS_T_A, 1, &r), 1);
	assert_int_equal(r.status, DNS_NXDOMAIN);
	assert_int_equal(r.count, 0);
	dns_result_free(&r);
	put(f, "example", DNS_T_A, 0, 30);
	memset(&r, 0, sizeof(r));
	assert_int_equal(dns_cache_get(f->c, "example", DNS_T_A, 1, &r), 1);
	assert_int_equal(r.status, DNS_NODATA);
	dns_result_free(&r);
	/* errors are not */
	put(f, "fail.example", DNS_T_A, 0, 30);
	assert_int_equal(hit(f, "fail.example", DNS_T_A, 1), 0);
	put(f, "slow.example", DNS_T_A, 0, 30);
	assert_int_equal(hit(f, "slow.example", DNS_T_A, 1), 0);
	{
		struct dns_result m = { .status = DNS_MALFORMED };
		dns_cache_put(f->c, "bad.example", DNS_T_TXT, 0, 30, &m);
		assert_int_equal(hit(f, "bad.example", DNS_T_TXT, 1), 0);
	}
}

static void
test_too_big(void **state)
{
	struct fx *f = *state;
	size_t n = DNS_CACHE_MAX_BYTES;
	char *text = xmalloc(n + 1);
	struct dns_rr rr = { .type = DNS_T_TXT, .ttl = 30 };
	struct dns_result r = { .status = DNS_OK, .count = 1, .rr = &rr };

	memset(text, 'a', n);
	text[n] = '\0';
	rr.text = text;
	rr.textlen = n;
	rr.rdata = (unsigned char *)text;
	rr.rdlen = 1;		/* over the bound by one octet */
	dns_cache_put(f->c, "big.example", DNS_T_TXT, 0, 30, &r);
	assert_int_equal(hit(f, "big.example", DNS_T_TXT, 1), 0);
	rr.rdlen = 0;		/* exactly at the bound */
	dns_cache_put(f->c, "big.example", DNS_T_TXT, 0, 30, &r);
	assert_int_equal(hit(f, "big.example", DNS_T_TXT, 1), 1);
	free(text);
}

#define THREADS		4
#define ROUNDS		2000

static void *
worker(void *arg)
{
	struct fx *f = arg;
	long hits = 0;

	for (int i = 0; i < ROUNDS; i++) {
		const char *name = (i % 3) ? "example" : "host.example";
		uint16_t type = (i % 3) ? DNS_T_TXT : DNS_T_A;

		if (i % 5 == 0)
			put(f, name, type, i, 30);
		hits += hit(f, name, type, i);
	}
	return (void *)hits;
}

static void
test_threads(void **state)
{
	struct fx *f = *state;
	pthread_t th[THREADS];
	long total = 0;

	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, f), 0);
	for (int i = 0; i < THREADS; i++) {
		void *h;
		pthread_join(th[i], &h);
		total += (long)h;
	}
	/* after the first puts almost every lookup is a hit */
	assert_true(total > THREADS * ROUNDS / 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deep_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_what_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
