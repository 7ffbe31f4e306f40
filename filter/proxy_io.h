/*
 * proxy_io.h - buffered, bounded socket I/O for the SMTP proxy: a line
 * reader that classifies each line (CRLF, bare LF, bare CR, NUL, too
 * long) and a write buffer flushed before the reader blocks. Plain TCP
 * or, after proxy_tls_accept(), TLS.
 *
 * Used by filter/proxy_session.c (client side) and filter/proxy_backend.c
 * (backend side). One struct proxy_io per socket, used by one thread at
 * a time. A timeout of PROXY_IO_NOWAIT makes a read return PL_AGAIN (or
 * -2) instead of waiting; io->want then says what to wait for (the
 * event loop in proxy.c does the waiting).
 */
#ifndef MXW_PROXY_IO_H
#define MXW_PROXY_IO_H

#include <stddef.h>

#include "buf.h"

/* RFC 5321 §4.5.3.1: limits including the CRLF. */
#define PROXY_CMD_LINE_MAX	512
#define PROXY_TEXT_LINE_MAX	1000
#define PROXY_REPLY_LINE_MAX	2048	/* backend replies: lenient */

#define PROXY_IO_NOWAIT		0	/* timeout_ms: do not wait at all */

enum proxy_line_status {
	PL_OK,		/* a line ended by CRLF */
	PL_TOO_LONG,	/* longer than the limit: read and dropped to its end */
	PL_BARE_LF,	/* ended by an LF without CR before it */
	PL_BARE_CR,	/* holds a CR that is not followed by LF */
	PL_NUL,		/* holds a NUL byte */
	PL_EOF,		/* the peer closed (a partial last line is dropped) */
	PL_TIMEOUT,	/* nothing arrived in time */
	PL_ERROR,	/* read or write error */
	PL_AGAIN,	/* PROXY_IO_NOWAIT: no complete line yet (the part
			 * read so far is kept; call again with the same
			 * line buffer); wait for io->want */
};

struct proxy_io {
	int		 fd;
	char		*in;		/* read buffer */
	size_t		 in_start, in_end;
	struct buf	 out;		/* pending output */
	int		 timeout_ms;	/* for writes (flush) */
	void		*ssl;		/* OpenSSL SSL * once in TLS, else NULL
					 * (set by proxy_tls_accept) */
	unsigned long long bytes_in, bytes_out;
	short		 want;		/* POLLIN/POLLOUT after PL_AGAIN */
	int		 turn_hints;	/* peer_turn is kept (set by the owner) */
	int		 peer_turn;	/* all output just went out: the peer
					 * answers it before it sends more, so
					 * the next read waits for readiness
					 * first (no read bound to fail) */
	int		 readable;	/* the poller reported input that no
					 * read has taken yet: read first */
	struct {			/* a line read in part (PL_AGAIN) */
		size_t	 n;
		int	 active, prev_cr, bare_cr, nul, too_long;
	} part;
};

/* proxy_io_init - wrap fd, which must be non-blocking (SOCK_NONBLOCK);
 * the io owns it from now: proxy_io_close. */
void	proxy_io_init(struct proxy_io *io, int fd, int write_timeout_ms);
/* proxy_io_close - close the fd and free the buffers; no-op twice. */
void	proxy_io_close(struct proxy_io *io);

/*
 * proxy_io_read_line - the next line into line[0..cap) without its line
 * end, NUL-terminated, *len its length. max is the longest line accepted,
 * not counting the CRLF (cap must be > max). Pending output is flushed
 * first, so that replies to pipelined commands leave together but never
 * wait for more input. A line that breaks several rules is reported by
 * the worst one: bare LF, then bare CR, then NUL, then too long. Waits at
 * most timeout_ms for each read.
 */
enum proxy_line_status proxy_io_read_line(struct proxy_io *io, char *line,
	    size_t cap, size_t max, size_t *len, int timeout_ms);

/* proxy_io_readable - the poller (edge-triggered) reported input: the
 * next read tries the socket whatever peer_turn says, so that no input
 * reported once is left unread. Cleared by a read that empties the
 * socket. */
void	proxy_io_readable(struct proxy_io *io);

/* proxy_io_pending - bytes read but not consumed yet (pipelined input). */
size_t	proxy_io_pending(const struct proxy_io *io);

/* proxy_io_has_input - 1 when input can be taken without reading the
 * socket (buffered here or inside TLS). */
int	proxy_io_has_input(const struct proxy_io *io);

/* proxy_io_flush_some - write what the socket takes now without
 * waiting: 0 all written, 1 some left (io->want says what to wait for),
 * -1 error. */
int	proxy_io_flush_some(struct proxy_io *io);

/* proxy_io_discard_input - drop buffered input; returns the bytes
 * dropped (STARTTLS: what a client pipelined before the handshake). */
size_t	proxy_io_discard_input(struct proxy_io *io);

/* proxy_io_peek / proxy_io_consume / proxy_io_read_more - raw access
 * to buffered input (the PROXY protocol header comes before any line):
 * peek returns the buffered bytes (*n of them), consume drops the first
 * n, read_more waits (timeout_ms) and appends what arrives: the count,
 * 0 at EOF, -1 on error, timeout or a full buffer, -2 with
 * PROXY_IO_NOWAIT when nothing is there yet. */
const unsigned char *proxy_io_peek(const struct proxy_io *io, size_t *n);
void	proxy_io_consume(struct proxy_io *io, size_t n);
int	proxy_io_read_more(struct proxy_io *io, int timeout_ms);

/* proxy_io_put / proxy_io_printf - queue output (flushed by the reader,
 * by proxy_io_flush, or when the queue grows past 64 KiB). Return 0, or
 * -1 when a needed flush failed. */
int	proxy_io_put(struct proxy_io *io, const void *p, size_t n);
int	proxy_io_printf(struct proxy_io *io, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* proxy_io_flush - write all pending output; 0, or -1 (error, timeout). */
int	proxy_io_flush(struct proxy_io *io);

/* proxy_line_status_name - "ok", "too long", "bare LF", ... */
const char *proxy_line_status_name(enum proxy_line_status s);

#endif
