/*
 * proxy_tls.c - server-side TLS for the SMTP proxy (OpenSSL).
 *
 * proxy.c makes the context in proxy_open(), while the process is still
 * root: the certificate chain and the private key are read then, so the
 * key file may stay readable by root only. Sessions (proxy_session.c)
 * call proxy_tls_accept() for STARTTLS or right after accept() on an
 * implicit-TLS listener; from then on proxy_io.c reads and writes
 * through the SSL object, which the io owns and frees.
 *
 * proxy_tls_client_new()/proxy_tls_connect() are the same for the
 * backend side (proxy_backend_tls = yes).
 *
 * Security: TLS renegotiation is refused (a client could otherwise
 * restart the handshake mid-session); compression is off (CRIME);
 * versions below tls_min_version are refused. The session cache is off:
 * every handshake is full (no shared cache between threads to guard).
 *
 * Thread safety: the SSL_CTX is read-only after proxy_tls_new() and
 * shared by all session threads (OpenSSL 1.1+ locks internally); each
 * SSL object belongs to one session thread.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "proxy_io.h"
#include "proxy_tls.h"
#include "util.h"

struct proxy_tls {
	SSL_CTX		*ctx;
};

/* proxy_tls_err - OpenSSL's first queued error as text, queue cleared. */
static void
proxy_tls_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char tmp[256];

	if (e != 0)
		ERR_error_string_n(e, tmp, sizeof(tmp));
	else
		str_copy(tmp, errno != 0 ? strerror(errno) : "no detail",
		    sizeof(tmp));
	ERR_clear_error();
	str_fmt(err, errlen, "%s: %s", what, tmp);
}

static int
proxy_tls_version_of(int v)
{
	switch (v) {
	case CFG_TLS_1_0: return TLS1_VERSION;
	case CFG_TLS_1_1: return TLS1_1_VERSION;
	case CFG_TLS_1_3: return TLS1_3_VERSION;
	default: return TLS1_2_VERSION;
	}
}

struct proxy_tls *
proxy_tls_new(const struct cfg *cfg, char *err, size_t errlen)
{
	struct proxy_tls *tls = xcalloc(1, sizeof(*tls));
	const char *key = cfg->tls_key_file[0] ? cfg->tls_key_file :
	    cfg->tls_cert_file;

	ERR_clear_error();
	if ((tls->ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		proxy_tls_err(err, errlen, "TLS context");
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(tls->ctx,
	    proxy_tls_version_of(cfg->tls_min_version)) != 1) {
		proxy_tls_err(err, errlen, "tls_min_version");
		goto fail;
	}
	SSL_CTX_set_options(tls->ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(tls->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(tls->ctx, cfg->tls_cert_file) != 1) {
		char what[600];

		str_fmt(what, sizeof(what), "tls_cert_file %s", cfg->tls_cert_file);
		proxy_tls_err(err, errlen, what);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(tls->ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(tls->ctx) != 1) {
		char what[600];

		str_fmt(what, sizeof(what), "tls_key_file %s", key);
		proxy_tls_err(err, errlen, what);
		goto fail;
	}
	return tls;
fail:
	proxy_tls_free(tls);
	return NULL;
}

void
proxy_tls_free(struct proxy_tls *tls)
{
	if (tls == NULL)
		return;
	SSL_CTX_free(tls->ctx);
	free(tls);
}

struct proxy_tls *
proxy_tls_client_new(char *err, size_t errlen)
{
	struct proxy_tls *tls = xcalloc(1, sizeof(*tls));

	ERR_clear_error();
	if ((tls->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION) != 1) {
		proxy_tls_err(err, errlen, "backend TLS context");
		proxy_tls_free(tls);
		return NULL;
	}
	/* XXX no verification: see proxy_backend_tls in mxwarden.conf(5). */
	SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(tls->ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return tls;
}

/* proxy_tls_handshake - either side's handshake with bounded waits. */
static int
proxy_tls_handshake(struct proxy_tls *tls, struct proxy_io *io, int server,
    int timeout_ms, char *err, size_t errlen)
{
	SSL *ssl;
	int r;

	if (proxy_io_pending(io) != 0)
		PANIC("proxy_tls_handshake: input pending before the handshake");
	ERR_clear_error();
	if ((ssl = SSL_new(tls->ctx)) == NULL || SSL_set_fd(ssl, io->fd) != 1) {
		proxy_tls_err(err, errlen, "SSL_new");
		SSL_free(ssl);
		return -1;
	}
	for (int rounds = 0; (r = server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1;
	    rounds++) {
		int e = SSL_get_error(ssl, r);
		struct pollfd p = { .fd = io->fd };
		int pr;

		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    rounds > 100) {
			proxy_tls_err(err, errlen, "TLS handshake");
			SSL_free(ssl);
			return -1;
		}
		p.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		do
			pr = poll(&p, 1, timeout_ms);
		while (pr < 0 && errno == EINTR);
		if (pr <= 0) {
			str_fmt(err, errlen, "TLS handshake: %s", pr == 0 ?
			    "timeout" : strerror(errno));
			SSL_free(ssl);
			ERR_clear_error();
			return -1;
		}
	}
	io->ssl = ssl;
	return 0;
}

int
proxy_tls_accept(struct proxy_tls *tls, struct proxy_io *io, int timeout_ms,
    char *err, size_t errlen)
{
	return proxy_tls_handshake(tls, io, 1, timeout_ms, err, errlen);
}

int
proxy_tls_connect(struct proxy_tls *tls, struct proxy_io *io, int timeout_ms,
    char *err, size_t errlen)
{
	return proxy_tls_handshake(tls, io, 0, timeout_ms, err, errlen);
}

void
proxy_tls_info(const struct proxy_io *io, char *version, size_t vlen,
    char *cipher, size_t clen)
{
	version[0] = cipher[0] = '\0';
	if (io->ssl == NULL)
		return;
	str_copy(version, SSL_get_version(io->ssl), vlen);
	str_copy(cipher, SSL_get_cipher_name((SSL *)io->ssl), clen);
}
