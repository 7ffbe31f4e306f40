/*
 * proxy_tls.h - the proxy's TLS (OpenSSL): one server context made at
 * start-up while still root (certificate and key read then), and the
 * handshake that turns a client's struct proxy_io into a TLS stream
 * (STARTTLS, or at once on an implicit-TLS listener); and the client
 * side towards the backend (proxy_backend_tls), which verifies the
 * backend's certificate when a CA file is configured.
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

/*
 * proxy_tls_client_new - the context for TLS to the backend (made at
 * start-up): TLS 1.2 or later. With cfg->proxy_backend_tls_ca_file the
 * certificates in that file are the only trust anchors and every
 * handshake verifies the backend's certificate; a missing, unreadable
 * or certificate-less file is an error naming the file and the reason.
 * Without it nothing is verified (logged once, as a warning). NULL with
 * a reason in err.
 */
struct proxy_tls *proxy_tls_client_new(const struct cfg *cfg, char *err,
	    size_t errlen);

/*
 * proxy_tls_connect - the client handshake on io (the backend side,
 * after its 220 to STARTTLS), each wait bounded by timeout_ms. The name
 * sent (SNI) and, when verifying, matched is cfg->proxy_backend_tls_name,
 * else the host of cfg->proxy_backend (cfg: the session's snapshot); an
 * IP address is matched against the certificate's IP addresses. io's
 * input buffer must be empty. Returns 0 (io in TLS until
 * proxy_io_close()), or -1 with a reason in err, for a refused
 * certificate OpenSSL's verification result ("certificate not verified:
 * hostname mismatch (expected name X)").
 */
int	proxy_tls_connect(struct proxy_tls *tls, struct proxy_io *io,
	    const struct cfg *cfg, int timeout_ms, char *err, size_t errlen);

/* proxy_tls_peer_status - for the log line after proxy_tls_connect():
 * "verified (name NAME)", "verified (address ADDR)" or "unverified". */
void	proxy_tls_peer_status(const struct proxy_io *io, char *out,
	    size_t outlen);

/*
 * proxy_tls_accept_start - begin the server handshake on io. io's input
 * buffer must be empty (the caller discards what a client sent before
 * the handshake). Returns 0, or -1 with a reason in err.
 * proxy_tls_accept_step - go on with it without waiting: 1 done (io
 * reads and writes through TLS until proxy_io_close()), 0 not yet (wait
 * for io->want, then call again), -1 failed with a reason in err (io is
 * then unusable: close it).
 */
int	proxy_tls_accept_start(struct proxy_tls *tls, struct proxy_io *io,
	    char *err, size_t errlen);
int	proxy_tls_accept_step(struct proxy_io *io, char *err, size_t errlen);

/* proxy_tls_info - "TLSv1.3" and the cipher's name of an io in TLS
 * ("" when not in TLS). */
void	proxy_tls_info(const struct proxy_io *io, char *version, size_t vlen,
	    char *cipher, size_t clen);

#endif
