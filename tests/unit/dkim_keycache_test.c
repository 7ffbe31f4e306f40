/*
 * dkim_keycache_test.c - the cache of decoded DKIM keys
 * (policy/dkim_keycache.c), called directly: hits share one key and
 * empty the BIO as decoding does, what is not one whole key is not
 * kept, the least recently used key makes room, threads agree, and
 * d2i_PUBKEY_bio() called from anywhere but libopendkim is OpenSSL's.
 * That libopendkim's calls do reach the cache is tested in dkim_test.
 *
 * Keys are P-256 (quick to make); the cache does not look inside them.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/x509.h>

#include "dkim_keycache.h"

struct der {
	unsigned char	*p;
	int		 n;
};

/* new_der - the SubjectPublicKeyInfo of a new key */
static struct der
new_der(void)
{
	struct der d = { NULL, 0 };
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	d.n = i2d_PUBKEY(k, &d.p);
	assert_true(d.n > 0);
	EVP_PKEY_free(k);
	return d;
}

/* decode - through the cache, from a fresh read-only memory BIO; the BIO
 * must be empty afterwards */
static EVP_PKEY *
decode(const struct der *d)
{
	BIO *b = BIO_new_mem_buf(d->p, d->n);
	char *rest;

	assert_non_null(b);
	EVP_PKEY *k = chk_dkim_keycache_decode(b);
	assert_int_equal(BIO_get_mem_data(b, &rest), 0);
	BIO_free(b);
	return k;
}

static void
test_hit_shares_the_key(void **state)
{
	struct der d = new_der(), e = new_der();
	EVP_PKEY *a, *b, *c;

	(void)state;
	chk_dkim_keycache_clear();
	a = decode(&d);
	b = decode(&d);
	c = decode(&e);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_int_equal(chk_dkim_keycache_size(), 2);
	/* the shared key is the one the bytes say */
	const unsigned char *p = d.p;
	EVP_PKEY *ref = d2i_PUBKEY(NULL, &p, d.n);
	assert_int_equal(EVP_PKEY_eq(ref, a), 1);
	assert_int_equal(EVP_PKEY_eq(ref, c), 0);
	EVP_PKEY_free(ref);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(c);
	chk_dkim_keycache_clear();
	assert_int_equal(chk_dkim_keycache_size(), 0);
	OPENSSL_free(d.p);
	OPENSSL_free(e.p);
}

/* Not one whole key: decoded (or refused) as OpenSSL does, not kept. */
static void
test_not_kept(void **state)
{
	struct der d = new_der();
	unsigned char *more = malloc((size_t)d.n + 2);
	char *rest;
	BIO *b;
	EVP_PKEY *k1, *k2;

	(void)state;
	chk_dkim_keycache_clear();
	memcpy(more, d.p, (size_t)d.n);
	memcpy(more + d.n, "xx", 2);
	for (int i = 0; i < 2; i++) {
		b = BIO_new_mem_buf(more, d.n + 2);
		EVP_PKEY *k = chk_dkim_keycache_decode(b);
		assert_non_null(k);
		assert_int_equal(BIO_get_mem_data(b, &rest), 2);
		BIO_free(b);
		EVP_PKEY_free(k);
	}
	assert_int_equal(chk_dkim_keycache_size(), 0);
	b = BIO_new_mem_buf("not a key", 9);
	assert_null(chk_dkim_keycache_decode(b));
	BIO_free(b);
	assert_int_equal(chk_dkim_keycache_size(), 0);
	/* d2i_PUBKEY_bio() called from here, not from libopendkim, is
	 * OpenSSL's: no key kept, a new object each time */
	b = BIO_new_mem_buf(d.p, d.n);
	k1 = d2i_PUBKEY_bio(b, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(d.p, d.n);
	k2 = d2i_PUBKEY_bio(b, NULL);
	BIO_free(b);
	assert_non_null(k1);
	assert_ptr_not_equal(k1, k2);
	assert_int_equal(chk_dkim_keycache_size(), 0);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	free(more);
	OPENSSL_free(d.p);
}

/* Full: the least recently used key goes, a key in use stays. */
static void
test_bound(void **state)
{
	enum { N = CHK_DKIM_KEYCACHE_MAX + 5 };
	struct der *d = calloc(N, sizeof(*d));
	EVP_PKEY *first0, *first1, *k;

	(void)state;
	chk_dkim_keycache_clear();
	for (int i = 0; i < N; i++)
		d[i] = new_der();
	first0 = decode(&d[0]);
	first1 = decode(&d[1]);
	for (int i = 2; i < N; i++) {
		EVP_PKEY_free(decode(&d[i]));
		k = decode(&d[0]);	/* d[0] kept in use */
		assert_ptr_equal(k, first0);
		EVP_PKEY_free(k);
	}
	assert_int_equal(chk_dkim_keycache_size(), CHK_DKIM_KEYCACHE_MAX);
	k = decode(&d[1]);		/* gone: decoded anew */
	assert_ptr_not_equal(k, first1);
	assert_int_equal(EVP_PKEY_eq(k, first1), 1);
	EVP_PKEY_free(k);
	EVP_PKEY_free(first0);
	EVP_PKEY_free(first1);
	chk_dkim_keycache_clear();
	for (int i = 0; i < N; i++)
		OPENSSL_free(d[i].p);
	free(d);
}

struct worker {
	struct der	*d;
	EVP_PKEY	*ref[3];
	int		 bad;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 600; i++) {
		BIO *b = BIO_new_mem_buf(w->d[i % 3].p, w->d[i % 3].n);
		EVP_PKEY *k = chk_dkim_keycache_decode(b);
		if (k == NULL || EVP_PKEY_eq(k, w->ref[i % 3]) != 1)
			w->bad++;
		EVP_PKEY_free(k);
		BIO_free(b);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct der d[3] = { new_der(), new_der(), new_der() };
	struct worker w[4];
	pthread_t th[4];

	(void)state;
	chk_dkim_keycache_clear();
	for (int t = 0; t < 4; t++) {
		w[t] = (struct worker){ .d = d };
		for (int i = 0; i < 3; i++) {
			const unsigned char *p = d[i].p;
			w[t].ref[i] = d2i_PUBKEY(NULL, &p, d[i].n);
		}
	}
	for (int t = 0; t < 4; t++)
		assert_int_equal(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].bad, 0);
		for (int i = 0; i < 3; i++)
			EVP_PKEY_free(w[t].ref[i]);
	}
	assert_int_equal(chk_dkim_keycache_size(), 3);
	chk_dkim_keycache_clear();
	for (int i = 0; i < 3; i++)
		OPENSSL_free(d[i].p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_shares_the_key),
		cmocka_unit_test(test_not_kept),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
