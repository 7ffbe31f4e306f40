/*
 * proxy_tls.h - the proxy's server-side TLS (OpenSSL): one context made
 * at start-up while still root (certificate and key read then), and the
 * handshake that turns a client's struct proxy_io into a TLS stream
 * (STARTTLS, or at once on an implicit-TLS listener).
 */
#ifndef MXW_PROXY_TLS_H
#define MXW_PROXY_TLS_H

#include <stddef.h>

struct cfg;
struct proxy_io;
struct proxy_tls;

/*
 * proxy_tls_new - the server context from cfg->tls_cert_file,
 * tls_key_file (empty: the certificate file) and tls_min_version.
 * Returns it, or NULL with a reason in err (unreadable file, key does
 * not match). Call only when tls_cert_file is set.
 */
struct proxy_tls *proxy_tls_new(const struct cfg *cfg, char *err, size_t errlen);
void	proxy_tls_free(struct proxy_tls *tls);

/* proxy_tls_client_new - the context for TLS to the backend: TLS 1.2 or
 * later, no certificate verification. NULL with a reason in err. */
struct proxy_tls *proxy_tls_client_new(char *err, size_t errlen);

/* proxy_tls_connect - the client handshake on io (the backend side),
 * as proxy_tls_accept. */
int	proxy_tls_connect(struct proxy_tls *tls, struct proxy_io *io,
	    int timeout_ms, char *err, size_t errlen);

/*
 * proxy_tls_accept - the server handshake on io, each wait bounded by
 * timeout_ms. io's input buffer must be empty (the caller discards what
 * a client sent before the handshake). On success io reads and writes
 * through TLS until proxy_io_close(); returns 0. Returns -1 with a reason
 * in err; io is then unusable (close it).
 */
int	proxy_tls_accept(struct proxy_tls *tls, struct proxy_io *io,
	    int timeout_ms, char *err, size_t errlen);

/* proxy_tls_info - "TLSv1.3" and the cipher's name of an io in TLS
 * ("" when not in TLS). */
void	proxy_tls_info(const struct proxy_io *io, char *version, size_t vlen,
	    char *cipher, size_t clen);

#endif
