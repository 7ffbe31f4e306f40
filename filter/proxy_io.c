/*
 * proxy_io.c - buffered, bounded socket I/O for the SMTP proxy.
 *
 * Called by the proxy session (client socket) and the backend client
 * (backend socket); each struct proxy_io is used by one thread at a
 * time. The descriptor is switched to non-blocking. Either every wait
 * goes through poll() with a timeout, so no peer can hold a thread
 * longer than the configured timeouts, or (PROXY_IO_NOWAIT, the client
 * side) a read that would wait returns PL_AGAIN with io->want set, and
 * the caller parks the connection in the event loop (proxy.c).
 *
 * The line reader never hands on a truncated line: a line over the limit
 * is read to its end, dropped and reported as PL_TOO_LONG, so the
 * stream stays in step with the peer. Bare LF, bare CR and NUL are
 * reported, never silently repaired: the caller decides (SMTP smuggling
 * defence, see proxy_session.c). Memory per io is bounded by the input
 * buffer, the caller's line buffer and the output queue limit.
 *
 * TLS: once io->ssl is set (proxy_tls.c) the same paths go through
 * SSL_read/SSL_write on the non-blocking socket; WANT_READ/WANT_WRITE
 * become a bounded poll(). OpenSSL's per-thread error queue is cleared
 * after each failure, so no stale error leaks into another session.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy_io.h"
#include "util.h"

#define PROXY_IO_INBUF		16384
#define PROXY_IO_OUT_FLUSH	65536		/* flush when queued past this */
#define PROXY_IO_OUT_MAX	(4u << 20)	/* hard limit of the queue */

void
proxy_io_init(struct proxy_io *io, int fd, int write_timeout_ms)
{
	memset(io, 0, sizeof(*io));
	io->fd = fd;
	io->in = xmalloc(PROXY_IO_INBUF);
	io->timeout_ms = write_timeout_ms;
	buf_init(&io->out, PROXY_IO_OUT_MAX);
}

void
proxy_io_close(struct proxy_io *io)
{
	if (io->ssl != NULL) {
		/* One non-blocking close_notify; no wait for the peer's. */
		(void)SSL_shutdown(io->ssl);
		SSL_free(io->ssl);
		ERR_clear_error();
		io->ssl = NULL;
	}
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
	free(io->in);
	io->in = NULL;
	buf_free(&io->out);
	io->in_start = io->in_end = 0;
}

size_t
proxy_io_pending(const struct proxy_io *io)
{
	return io->in_end - io->in_start;
}

size_t
proxy_io_discard_input(struct proxy_io *io)
{
	size_t n = io->in_end - io->in_start;

	io->in_start = io->in_end = 0;
	io->part.active = 0;
	return n;
}

/* proxy_io_ssl_wait - after an SSL_read/SSL_write result r: the poll
 * events to wait for (POLLIN/POLLOUT), 0 at a clean TLS close, -1 on a
 * TLS or socket error. */
static int
proxy_io_ssl_wait(struct proxy_io *io, int r)
{
	switch (SSL_get_error(io->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return POLLIN;
	case SSL_ERROR_WANT_WRITE:
		return POLLOUT;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		return -1;
	}
}

/* proxy_io_poll - wait for events on the fd: 1 ready, 0 timeout, -1. */
static int
proxy_io_poll(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r;
	return 1;
}

/* proxy_io_write_some - one write of pending output from off: the bytes
 * written (> 0), 0 when the socket takes nothing now (io->want set), -1
 * on error. */
static ssize_t
proxy_io_write_some(struct proxy_io *io, size_t off)
{
	ssize_t n;

	if (io->ssl != NULL) {
		int r = SSL_write(io->ssl, io->out.data + off,
		    (int)(io->out.len - off > 65536 ? 65536 : io->out.len - off));
		int ev;

		if (r > 0)
			return r;
		if ((ev = proxy_io_ssl_wait(io, r)) <= 0)
			return -1;
		io->want = (short)ev;
		return 0;
	}
	do
		n = send(io->fd, io->out.data + off, io->out.len - off,
		    MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		io->peer_turn = io->turn_hints && off + (size_t)n == io->out.len;
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		io->want = POLLOUT;
		return 0;
	}
	return -1;
}

/* proxy_io_drop_out - the first off bytes of the queue are written. */
static void
proxy_io_drop_out(struct proxy_io *io, size_t off)
{
	if (off == io->out.len) {
		buf_reset(&io->out);
		return;
	}
	memmove(io->out.data, io->out.data + off, io->out.len - off);
	io->out.len -= off;
}

int
proxy_io_flush(struct proxy_io *io)
{
	size_t off = 0;

	if (io->fd < 0)
		return -1;
	while (off < io->out.len) {
		ssize_t n = proxy_io_write_some(io, off);

		if (n > 0) {
			off += (size_t)n;
			io->bytes_out += (unsigned long long)n;
			continue;
		}
		if (n == 0 && proxy_io_poll(io->fd, io->want, io->timeout_ms) == 1)
			continue;
		buf_reset(&io->out);
		return -1;
	}
	buf_reset(&io->out);
	return 0;
}

int
proxy_io_flush_some(struct proxy_io *io)
{
	size_t off = 0;
	ssize_t n = 1;

	if (io->fd < 0)
		return -1;
	while (off < io->out.len && (n = proxy_io_write_some(io, off)) > 0) {
		off += (size_t)n;
		io->bytes_out += (unsigned long long)n;
	}
	if (n < 0) {
		buf_reset(&io->out);
		return -1;
	}
	proxy_io_drop_out(io, off);
	return io->out.len > 0;
}

int
proxy_io_put(struct proxy_io *io, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		size_t room = PROXY_IO_OUT_FLUSH - (io->out.len < PROXY_IO_OUT_FLUSH ?
		    io->out.len : PROXY_IO_OUT_FLUSH);
		size_t part = n < room ? n : room;

		if (part > 0) {
			if (buf_append(&io->out, s, part) != 0)
				return -1;
			s += part;
			n -= part;
		}
		if (io->out.len >= PROXY_IO_OUT_FLUSH && proxy_io_flush(io) != 0)
			return -1;
	}
	return 0;
}

int
proxy_io_printf(struct proxy_io *io, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -1;	/* replies are short: never send a cut one */
	return proxy_io_put(io, tmp, (size_t)n);
}

/* proxy_io_fill - read more input (flushing output first). Returns the
 * bytes read, 0 at EOF, or a negative PL_ status (timeout, error, and
 * PL_AGAIN with PROXY_IO_NOWAIT, io->want set). Without waiting, output
 * that the socket does not take now stops the reading: a client that
 * does not read its replies is not read either. */
static ssize_t
proxy_io_fill(struct proxy_io *io, int timeout_ms)
{
	ssize_t n;
	int r, skip_read;

	if (timeout_ms == PROXY_IO_NOWAIT) {
		if ((r = proxy_io_flush_some(io)) < 0)
			return -PL_ERROR;
		if (r > 0)
			return -PL_AGAIN;
	} else if (io->out.len > 0 && proxy_io_flush(io) != 0) {
		return -PL_ERROR;
	}
	if (io->in_start == io->in_end)
		io->in_start = io->in_end = 0;
	if (io->in_end == PROXY_IO_INBUF) {
		/* Everything before in_start has been consumed. */
		memmove(io->in, io->in + io->in_start, io->in_end - io->in_start);
		io->in_end -= io->in_start;
		io->in_start = 0;
	}
	/* A peer that has just been sent a whole command or reply has
	 * rarely answered yet: poll (or park) before reading. */
	skip_read = io->peer_turn && !io->readable && io->ssl == NULL &&
	    io->in_start == io->in_end;
	io->peer_turn = 0;
	for (;;) {
		short ev;

		if (skip_read) {
			skip_read = 0;
			ev = POLLIN;
		} else if (io->ssl != NULL) {
			int sr = SSL_read(io->ssl, io->in + io->in_end,
			    (int)(PROXY_IO_INBUF - io->in_end));
			int w = sr > 0 ? 0 : proxy_io_ssl_wait(io, sr);

			if (sr > 0) {
				n = sr;
				break;
			}
			if (w == 0)
				return 0;
			if (w < 0)
				return -PL_ERROR;
			ev = (short)w;
		} else {
			n = read(io->fd, io->in + io->in_end,
			    PROXY_IO_INBUF - io->in_end);
			if (n >= 0) {
				/* A short read took all there was. */
				if ((size_t)n < PROXY_IO_INBUF - io->in_end)
					io->readable = 0;
				break;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -PL_ERROR;
			io->readable = 0;
			ev = POLLIN;
		}
		if (timeout_ms == PROXY_IO_NOWAIT) {
			io->want = ev;
			return -PL_AGAIN;
		}
		r = proxy_io_poll(io->fd, ev, timeout_ms);
		if (r == 0)
			return -PL_TIMEOUT;
		if (r < 0)
			return -PL_ERROR;
	}
	io->in_end += (size_t)n;
	io->bytes_in += (unsigned long long)n;
	return n;
}

void
proxy_io_readable(struct proxy_io *io)
{
	io->readable = 1;
}

const unsigned char *
proxy_io_peek(const struct proxy_io *io, size_t *n)
{
	*n = io->in_end - io->in_start;
	return (const unsigned char *)io->in + io->in_start;
}

void
proxy_io_consume(struct proxy_io *io, size_t n)
{
	if (n > io->in_end - io->in_start)
		PANIC("proxy_io_consume: %zu of %zu", n, io->in_end - io->in_start);
	io->in_start += n;
}

int
proxy_io_read_more(struct proxy_io *io, int timeout_ms)
{
	ssize_t r;

	if (io->in_start == 0 && io->in_end == PROXY_IO_INBUF)
		return -1;
	r = proxy_io_fill(io, timeout_ms);
	if (r == -PL_AGAIN)
		return -2;
	return r < 0 ? -1 : (int)r;
}

int
proxy_io_has_input(const struct proxy_io *io)
{
	return proxy_io_pending(io) > 0 ||
	    (io->ssl != NULL && SSL_pending(io->ssl) > 0);
}

/* The worst of the anomalies seen in one line. */
static enum proxy_line_status
proxy_line_worst(int bare_lf, int bare_cr, int nul, int too_long)
{
	if (bare_lf)
		return PL_BARE_LF;
	if (bare_cr)
		return PL_BARE_CR;
	if (nul)
		return PL_NUL;
	if (too_long)
		return PL_TOO_LONG;
	return PL_OK;
}

enum proxy_line_status
proxy_io_read_line(struct proxy_io *io, char *line, size_t cap, size_t max,
    size_t *len, int timeout_ms)
{
	size_t n = 0;
	int prev_cr = 0, bare_cr = 0, nul = 0, too_long = 0;
	enum proxy_line_status st;

	if (cap <= max)
		PANIC("proxy_io_read_line: buffer %zu for limit %zu", cap, max);
	if (io->part.active) {
		/* The rest of a line begun by an earlier PL_AGAIN. */
		n = io->part.n;
		prev_cr = io->part.prev_cr;
		bare_cr = io->part.bare_cr;
		nul = io->part.nul;
		too_long = io->part.too_long;
		io->part.active = 0;
	}
	*len = 0;
	if (io->fd < 0)
		return PL_ERROR;
	for (;;) {
		while (io->in_start < io->in_end) {
			char c = io->in[io->in_start++];

			if (prev_cr) {
				prev_cr = 0;
				if (c == '\n')
					goto done;
				bare_cr = 1;
				if (n < max)
					line[n++] = '\r';
				else
					too_long = 1;
			}
			if (c == '\r') {
				prev_cr = 1;
				continue;
			}
			if (c == '\n') {
				line[n] = '\0';
				*len = n;
				return proxy_line_worst(1, bare_cr, nul, too_long);
			}
			if (c == '\0')
				nul = 1;
			if (n < max)
				line[n++] = c;
			else
				too_long = 1;
		}
		ssize_t r = proxy_io_fill(io, timeout_ms);
		if (r > 0)
			continue;
		st = r == 0 ? PL_EOF : (enum proxy_line_status)-r;
		if (st == PL_AGAIN) {
			io->part.n = n;
			io->part.prev_cr = prev_cr;
			io->part.bare_cr = bare_cr;
			io->part.nul = nul;
			io->part.too_long = too_long;
			io->part.active = 1;
		}
		line[n] = '\0';
		return st;
	}
done:
	line[n] = '\0';
	*len = n;
	return proxy_line_worst(0, bare_cr, nul, too_long);
}

const char *
proxy_line_status_name(enum proxy_line_status s)
{
	switch (s) {
	case PL_OK: return "ok";
	case PL_TOO_LONG: return "too long";
	case PL_BARE_LF: return "bare LF";
	case PL_BARE_CR: return "bare CR";
	case PL_NUL: return "NUL";
	case PL_EOF: return "EOF";
	case PL_TIMEOUT: return "timeout";
	case PL_ERROR: return "error";
	case PL_AGAIN: return "again";
	}
	return "?";
}
