/*
 * dkim_keycache.h - decoded DKIM public keys, kept for the next message.
 *
 * libopendkim decodes the key of every signature it verifies with
 * OpenSSL's d2i_PUBKEY_bio(). With OpenSSL 3 that decoding, and the
 * conversion that EVP_PKEY_get1_RSA() then makes, cost more than the
 * signature check itself: about 30% of the CPU the proxy spends on a
 * signed message. libopendkim has no hook to hand it a decoded key, so
 * this module defines d2i_PUBKEY_bio() in the program itself. The
 * dynamic linker binds libopendkim's calls to it; calls from anywhere
 * else (OpenSSL included) go straight to OpenSSL's function.
 *
 * For libopendkim's calls, the key is looked up by its exact DER bytes:
 * a key published anew is other bytes, so nothing can go stale, and a
 * hit returns one more reference to the key decoded from the same
 * bytes. libopendkim only reads the key (EVP_PKEY_get1_RSA, RSA_size,
 * RSA_verify), which OpenSSL allows from several threads at once. At
 * most CHK_DKIM_KEYCACHE_MAX keys are kept, the least recently used
 * dropped first.
 */
#ifndef MXW_DKIM_KEYCACHE_H
#define MXW_DKIM_KEYCACHE_H

#include <stddef.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

#define CHK_DKIM_KEYCACHE_MAX	256	/* keys kept */
#define CHK_DKIM_KEYCACHE_DER	4096	/* longer keys are not kept */

/* chk_dkim_keycache_decode - d2i_PUBKEY_bio(bp, NULL) through the cache:
 * a hit empties bp (as decoding would) and returns another reference;
 * a miss decodes with OpenSSL and keeps the key when bp held exactly one
 * DER object. Not a memory BIO, or over CHK_DKIM_KEYCACHE_DER: OpenSSL's
 * function alone. The caller frees the result with EVP_PKEY_free(). */
EVP_PKEY	*chk_dkim_keycache_decode(BIO *bp);

/* chk_dkim_keycache_size - keys kept now. */
size_t		 chk_dkim_keycache_size(void);

/* chk_dkim_keycache_clear - drop every kept key (keys still in use stay
 * alive until their last EVP_PKEY_free). */
void		 chk_dkim_keycache_clear(void);

#endif
