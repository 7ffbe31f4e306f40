/*
 * proxy_tls.c - server-side TLS for the SMTP proxy (OpenSSL).
 *
 * proxy.c makes the context in proxy_open(), while the process is still
 * root: the certificate chain and the private key are read then, so the
 * key file may stay readable by root only. Sessions (proxy_session.c)
 * call proxy_tls_accept_start() for STARTTLS or right after accept() on
 * an implicit-TLS listener, then proxy_tls_accept_step() each time the
 * socket is ready (the handshake never waits: the event loop does);
 * from then on proxy_io.c reads and writes through the SSL object,
 * which the io owns and frees.
 *
 * proxy_tls_client_new()/proxy_tls_connect() are the backend side
 * (proxy_backend_tls = yes), at the end of this file: proxy.c makes the
 * client context at start-up (the CA file of proxy_backend_tls_ca_file
 * read then); proxy_session.c calls proxy_tls_connect() after the
 * backend's 220 to STARTTLS. With a CA file the backend's certificate
 * must chain to one of its certificates and match the expected name
 * (OpenSSL's own checks, SSL_set1_host), else the handshake fails and
 * the session treats the backend as failed; without one the session
 * is encrypted but unverified, and proxy_tls_peer_status() says so.
 *
 * Security: TLS renegotiation is refused (a client could otherwise
 * restart the handshake mid-session); compression is off (CRIME);
 * versions below tls_min_version are refused. The session cache is off:
 * every handshake is full (no shared cache between threads to guard).
 *
 * Thread safety: the SSL_CTX is read-only after proxy_tls_new() and
 * shared by all workers (OpenSSL 1.1+ locks internally); each SSL object
 * belongs to one session, run by one worker at a time (OpenSSL's error
 * queue is per thread: it is cleared after each failure).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "proxy_io.h"
#include "proxy_tls.h"
#include "util.h"

struct proxy_tls {
	SSL_CTX		*ctx;
	int		 verify;	/* client: a CA file was loaded */
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

int
proxy_tls_accept_start(struct proxy_tls *tls, struct proxy_io *io, char *err,
    size_t errlen)
{
	SSL *ssl;

	if (proxy_io_pending(io) != 0)
		PANIC("proxy_tls_accept_start: input pending before the handshake");
	ERR_clear_error();
	if ((ssl = SSL_new(tls->ctx)) == NULL || SSL_set_fd(ssl, io->fd) != 1) {
		proxy_tls_err(err, errlen, "SSL_new");
		SSL_free(ssl);
		return -1;
	}
	SSL_set_accept_state(ssl);
	io->ssl = ssl;
	return 0;
}

int
proxy_tls_accept_step(struct proxy_io *io, char *err, size_t errlen)
{
	int r, e;

	ERR_clear_error();
	if ((r = SSL_do_handshake(io->ssl)) == 1)
		return 1;
	e = SSL_get_error(io->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		io->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	proxy_tls_err(err, errlen, "TLS handshake");
	SSL_free(io->ssl);
	io->ssl = NULL;
	return -1;
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

/*
 * The backend side (client). The context holds the trust anchors, read
 * once at start-up; the name to match is set on each SSL object from
 * the session's config snapshot, so a reload that moves proxy_backend
 * moves the expected name with it.
 */

/* proxy_tls_load_ca - file's certificates as the only trust anchors.
 * Any certificate in it anchors a chain (X509_V_FLAG_PARTIAL_CHAIN):
 * an intermediate CA, or a self-signed backend certificate, will do. */
static int
proxy_tls_load_ca(SSL_CTX *ctx, const char *file, char *err, size_t errlen)
{
	char what[600];
	FILE *fp;

	str_fmt(what, sizeof(what), "proxy_backend_tls_ca_file %s", file);
	if ((fp = fopen(file, "r")) == NULL) {
		str_fmt(err, errlen, "%s: %s", what, strerror(errno));
		return -1;
	}
	fclose(fp);
	errno = 0;
	if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
		proxy_tls_err(err, errlen, what);
		return -1;
	}
	if (sk_X509_OBJECT_num(X509_STORE_get0_objects(
	    SSL_CTX_get_cert_store(ctx))) <= 0) {
		str_fmt(err, errlen, "%s: no certificate in it", what);
		return -1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
	    X509_V_FLAG_PARTIAL_CHAIN);
	/* RFC 6125 6.4.3: "*" only as a whole left-most label. */
	X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx),
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return 0;
}

struct proxy_tls *
proxy_tls_client_new(const struct cfg *cfg, char *err, size_t errlen)
{
	struct proxy_tls *tls = xcalloc(1, sizeof(*tls));

	ERR_clear_error();
	if ((tls->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION) != 1) {
		proxy_tls_err(err, errlen, "backend TLS context");
		proxy_tls_free(tls);
		return NULL;
	}
	SSL_CTX_set_options(tls->ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (cfg->proxy_backend_tls_ca_file[0] == '\0') {
		SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_NONE, NULL);
		log_warn("proxy: the backend's TLS certificate will not be"
		    " verified (no proxy_backend_tls_ca_file): unverified TLS");
		return tls;
	}
	if (proxy_tls_load_ca(tls->ctx, cfg->proxy_backend_tls_ca_file, err,
	    errlen) != 0) {
		proxy_tls_free(tls);
		return NULL;
	}
	tls->verify = 1;
	return tls;
}

/* proxy_tls_peer_name - the name the backend's certificate must match:
 * proxy_backend_tls_name, else the host of proxy_backend ("host:port",
 * "[addr]:port"); brackets around an address are dropped. */
static int
proxy_tls_peer_name(const struct cfg *cfg, char *name, size_t namelen)
{
	const char *s = cfg->proxy_backend_tls_name[0] != '\0' ?
	    cfg->proxy_backend_tls_name : cfg->proxy_backend;
	const char *end;

	if (s[0] == '[') {
		s++;
		end = strchr(s, ']');
	} else if (s == cfg->proxy_backend_tls_name) {
		end = s + strlen(s);
	} else {
		end = strrchr(s, ':');
	}
	if (end == NULL)
		end = s + strlen(s);
	if (end == s || (size_t)(end - s) >= namelen)
		return -1;
	memcpy(name, s, (size_t)(end - s));
	name[end - s] = '\0';
	return 0;
}

/* proxy_tls_is_ip - 1 when name is an IPv4 or IPv6 address. */
static int
proxy_tls_is_ip(const char *name)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1;
}

/* proxy_tls_set_peer - SNI and (when verifying) the name or address
 * the certificate must carry, on one SSL object. */
static int
proxy_tls_set_peer(struct proxy_tls *tls, SSL *ssl, const char *name,
    char *err, size_t errlen)
{
	int is_ip = proxy_tls_is_ip(name);

	/* RFC 6066 3: no literal addresses in SNI. */
	if (!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1) {
		proxy_tls_err(err, errlen, "backend TLS name (SNI)");
		return -1;
	}
	if (!tls->verify)
		return 0;
	if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) :
	    SSL_set1_host(ssl, name)) != 1) {
		char what[300];

		str_fmt(what, sizeof(what), "backend TLS name %s", name);
		proxy_tls_err(err, errlen, what);
		return -1;
	}
	return 0;
}

/* proxy_tls_connect_fail - why the handshake failed: the verification
 * result when the certificate was refused, else OpenSSL's error. */
static void
proxy_tls_connect_fail(struct proxy_tls *tls, SSL *ssl, const char *name,
    char *err, size_t errlen)
{
	/* X509_V_OK from SSL_new() until a certificate was refused. */
	long v = SSL_get_verify_result(ssl);

	if (tls->verify && v != X509_V_OK) {
		str_fmt(err, errlen, "TLS handshake: certificate not verified: %s"
		    " (expected %s %s)", X509_verify_cert_error_string(v),
		    proxy_tls_is_ip(name) ? "address" : "name", name);
		ERR_clear_error();
	} else {
		proxy_tls_err(err, errlen, "TLS handshake");
	}
}

int
proxy_tls_connect(struct proxy_tls *tls, struct proxy_io *io,
    const struct cfg *cfg, int timeout_ms, char *err, size_t errlen)
{
	char name[256];
	SSL *ssl;
	int r;

	if (proxy_io_pending(io) != 0)
		PANIC("proxy_tls_connect: input pending before the handshake");
	if (proxy_tls_peer_name(cfg, name, sizeof(name)) != 0) {
		str_fmt(err, errlen, "no usable name for the backend's certificate"
		    " in proxy_backend or proxy_backend_tls_name");
		return -1;
	}
	ERR_clear_error();
	if ((ssl = SSL_new(tls->ctx)) == NULL || SSL_set_fd(ssl, io->fd) != 1) {
		proxy_tls_err(err, errlen, "SSL_new");
		SSL_free(ssl);
		return -1;
	}
	if (proxy_tls_set_peer(tls, ssl, name, err, errlen) != 0) {
		SSL_free(ssl);
		return -1;
	}
	for (int rounds = 0; (r = SSL_connect(ssl)) != 1; rounds++) {
		int e = SSL_get_error(ssl, r);
		struct pollfd p = { .fd = io->fd };
		int pr;

		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    rounds > 100) {
			proxy_tls_connect_fail(tls, ssl, name, err, errlen);
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

void
proxy_tls_peer_status(const struct proxy_io *io, char *out, size_t outlen)
{
	SSL *ssl = io->ssl;
	const char *host;
	char *ip;

	if (ssl == NULL || !(SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) ||
	    SSL_get_verify_result(ssl) != X509_V_OK ||
	    SSL_get0_peer_certificate(ssl) == NULL) {
		str_copy(out, "unverified", outlen);
		return;
	}
	if ((host = SSL_get0_peername(ssl)) != NULL) {
		str_fmt(out, outlen, "verified (name %s)", host);
		return;
	}
	ip = X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));
	str_fmt(out, outlen, "verified (address %s)", ip ? ip : "?");
	OPENSSL_free(ip);
}
