/*
 * dkim_keycache.c - decoded DKIM public keys, kept for the next message
 * (see dkim_keycache.h for why and how).
 *
 * The cache is a small array searched under one mutex: a program sees
 * few distinct keys (one per sending domain and selector), and a search
 * of CHK_DKIM_KEYCACHE_MAX entries costs far less than one decoding.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>

#include "dkim_keycache.h"
#include "log.h"
#include "util.h"

typedef EVP_PKEY *(*kc_d2i_fn)(BIO *, EVP_PKEY **);

struct kc_ent {
	unsigned char	*der;
	size_t		 len;
	uint64_t	 hash;
	uint64_t	 used;		/* kc.tick at the last hit */
	EVP_PKEY	*key;		/* the cache's own reference */
};

static struct {
	pthread_mutex_t	 lock;
	struct kc_ent	 ent[CHK_DKIM_KEYCACHE_MAX];
	size_t		 n;
	uint64_t	 tick;
} kc = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t kc_once = PTHREAD_ONCE_INIT;
static kc_d2i_fn kc_real_fn;

static void
kc_find_real(void)
{
	kc_real_fn = (kc_d2i_fn)dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
	if (kc_real_fn == NULL)
		log_err("dkim: OpenSSL's d2i_PUBKEY_bio not found (%s): DKIM"
		    " keys cannot be decoded", dlerror());
}

/* kc_real - OpenSSL's own d2i_PUBKEY_bio. */
static EVP_PKEY *
kc_real(BIO *bp, EVP_PKEY **a)
{
	(void)pthread_once(&kc_once, kc_find_real);
	return kc_real_fn != NULL ? kc_real_fn(bp, a) : NULL;
}

/* kc_from_libopendkim - addr (a return address) is in libopendkim. */
static int
kc_from_libopendkim(const void *addr)
{
	Dl_info info;
	const char *base;

	if (dladdr(addr, &info) == 0 || info.dli_fname == NULL)
		return 0;
	base = strrchr(info.dli_fname, '/');
	base = base != NULL ? base + 1 : info.dli_fname;
	return strncmp(base, "libopendkim.so", 14) == 0;
}

/*
 * d2i_PUBKEY_bio - the program's definition of OpenSSL's function (see
 * dkim_keycache.h): libopendkim's calls go through the cache, every
 * other call, and any call that passes a to be reused, to OpenSSL.
 */
EVP_PKEY *
d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
	if (a == NULL && kc_from_libopendkim(__builtin_return_address(0)))
		return chk_dkim_keycache_decode(bp);
	return kc_real(bp, a);
}

/* kc_hash - FNV-1a over the DER bytes. */
static uint64_t
kc_hash(const unsigned char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* kc_find - the entry for these bytes, or NULL. Caller holds the lock. */
static struct kc_ent *
kc_find(const unsigned char *der, size_t len, uint64_t h)
{
	for (size_t i = 0; i < kc.n; i++)
		if (kc.ent[i].hash == h && kc.ent[i].len == len &&
		    memcmp(kc.ent[i].der, der, len) == 0)
			return &kc.ent[i];
	return NULL;
}

/* kc_keep - add key for der (taken over) unless another thread did
 * first; the least recently used entry makes room. Caller holds the lock. */
static void
kc_keep(unsigned char *der, size_t len, uint64_t h, EVP_PKEY *key)
{
	struct kc_ent *e;

	if (kc_find(der, len, h) != NULL) {
		free(der);
		return;
	}
	if (kc.n < CHK_DKIM_KEYCACHE_MAX) {
		e = &kc.ent[kc.n++];
	} else {
		e = &kc.ent[0];
		for (size_t i = 1; i < kc.n; i++)
			if (kc.ent[i].used < e->used)
				e = &kc.ent[i];
		EVP_PKEY_free(e->key);
		free(e->der);
	}
	EVP_PKEY_up_ref(key);
	*e = (struct kc_ent){ .der = der, .len = len, .hash = h,
		.used = ++kc.tick, .key = key };
}

/* kc_drain - read n bytes from bp and drop them. */
static void
kc_drain(BIO *bp, size_t n)
{
	unsigned char skip[512];

	while (n > 0) {
		int r = BIO_read(bp, skip, (int)(n < sizeof(skip) ? n : sizeof(skip)));
		if (r <= 0)
			break;
		n -= (size_t)r;
	}
}

EVP_PKEY *
chk_dkim_keycache_decode(BIO *bp)
{
	char *data, *rest;
	long n;
	EVP_PKEY *key = NULL;
	struct kc_ent *e;

	if (BIO_method_type(bp) != BIO_TYPE_MEM ||
	    (n = BIO_get_mem_data(bp, &data)) <= 0 || n > CHK_DKIM_KEYCACHE_DER)
		return kc_real(bp, NULL);
	const unsigned char *der = (const unsigned char *)data;
	uint64_t h = kc_hash(der, (size_t)n);

	pthread_mutex_lock(&kc.lock);
	if ((e = kc_find(der, (size_t)n, h)) != NULL) {
		e->used = ++kc.tick;
		key = e->key;
		EVP_PKEY_up_ref(key);
	}
	pthread_mutex_unlock(&kc.lock);
	if (key != NULL) {
		kc_drain(bp, (size_t)n);
		return key;
	}

	/* The bytes are copied first: decoding moves past them. */
	unsigned char *copy = xmalloc((size_t)n);
	memcpy(copy, der, (size_t)n);
	key = kc_real(bp, NULL);
	if (key == NULL || BIO_get_mem_data(bp, &rest) != 0) {
		/* not a key, or more than one object: not kept */
		free(copy);
		return key;
	}
	pthread_mutex_lock(&kc.lock);
	kc_keep(copy, (size_t)n, h, key);
	pthread_mutex_unlock(&kc.lock);
	return key;
}

size_t
chk_dkim_keycache_size(void)
{
	pthread_mutex_lock(&kc.lock);
	size_t n = kc.n;
	pthread_mutex_unlock(&kc.lock);
	return n;
}

void
chk_dkim_keycache_clear(void)
{
	pthread_mutex_lock(&kc.lock);
	for (size_t i = 0; i < kc.n; i++) {
		EVP_PKEY_free(kc.ent[i].key);
		free(kc.ent[i].der);
	}
	kc.n = 0;
	pthread_mutex_unlock(&kc.lock);
}
