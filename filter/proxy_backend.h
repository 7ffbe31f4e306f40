/*
 * proxy_backend.h - the proxy's SMTP client towards the backend MTA:
 * connect with a timeout, send one command, read its (multi-line) reply,
 * learn the EHLO capabilities, tell a Postfix backend the real client
 * with XCLIENT.
 *
 * One struct proxy_backend per client session (or kept for the next one
 * by proxy_bepool.h), used by one worker at a time.
 */
#ifndef MXW_PROXY_BACKEND_H
#define MXW_PROXY_BACKEND_H

#include <stddef.h>

#include "buf.h"
#include "proxy_io.h"

struct addrinfo;

#define PROXY_REPLY_LINES_MAX	64

/* EHLO capabilities the proxy cares about. */
#define PB_CAP_PIPELINING	0x01
#define PB_CAP_SIZE		0x02
#define PB_CAP_8BITMIME		0x04
#define PB_CAP_ENHANCED		0x08
#define PB_CAP_SMTPUTF8		0x10
#define PB_CAP_XCLIENT		0x20
#define PB_CAP_AUTH		0x40
#define PB_CAP_STARTTLS		0x80
#define PB_CAP_CHUNKING		0x100	/* RFC 3030 BDAT */

struct proxy_reply {
	int		 code;		/* 100..599 */
	size_t		 nlines;
	struct buf	 text;		/* the lines' texts, each ended by '\n' */
};

struct proxy_backend {
	struct proxy_io	 io;
	char		 name[300];	/* "host:port" for log lines */
	int		 connected;
	unsigned	 caps;		/* PB_CAP_* from the last EHLO */
	unsigned long long size;	/* its SIZE, 0 when none or unlimited */
	char		 xclient[256];	/* attribute names after XCLIENT */
	char		 auth[256];	/* SASL mechanisms after AUTH */
	char		 line[PROXY_REPLY_LINE_MAX + 1]; /* the line being read */
	struct addrinfo	*ais, *ai;	/* connecting: the addresses, the one
					 * tried (its socket in io.fd) */
	int		 write_ms;
};

void	proxy_reply_init(struct proxy_reply *r);
void	proxy_reply_free(struct proxy_reply *r);

/*
 * proxy_backend_connect_start - connect to spec ("host:port",
 * "[v6addr]:port") without waiting: each address in turn. Returns 0
 * (connected), 1 (in progress: wait until b->io.fd is writable or the
 * connect time is over, then proxy_backend_connect_step), or -1 with a
 * reason in err. write_ms bounds each later write.
 * proxy_backend_connect_step - the socket became writable, or the time
 * ran out (timed_out): 0 connected, 1 in progress on the next address,
 * -1 with the reason in err when none is left.
 */
int	proxy_backend_connect_start(struct proxy_backend *b, const char *spec,
	    int write_ms, char *err, size_t errlen);
int	proxy_backend_connect_step(struct proxy_backend *b, int timed_out,
	    int connect_ms, char *err, size_t errlen);

/*
 * proxy_backend_read_reply - one complete reply within timeout_ms per
 * read. Returns 0, or -1 with a reason (timeout, connection lost,
 * malformed reply) in err; the backend is then unusable.
 */
int	proxy_backend_read_reply(struct proxy_backend *b, struct proxy_reply *r,
	    int timeout_ms, char *err, size_t errlen);

/*
 * proxy_backend_reply_begin - empty r for a reply read in parts:
 * proxy_backend_reply_more reads its lines, waiting up to timeout_ms per
 * read (PROXY_IO_NOWAIT: not at all). It returns 1 when the reply is
 * complete, 0 when more must come first (NOWAIT only: b->io.want says
 * what to wait for), -1 as proxy_backend_read_reply.
 */
void	proxy_backend_reply_begin(struct proxy_reply *r);
int	proxy_backend_reply_more(struct proxy_backend *b, struct proxy_reply *r,
	    int timeout_ms, char *err, size_t errlen);

/*
 * proxy_backend_send - send "line\r\n" (line must hold no CR or LF:
 * PANIC otherwise). 0, or -1 with a reason in err (the backend is then
 * unusable).
 */
int	proxy_backend_send(struct proxy_backend *b, const char *line,
	    char *err, size_t errlen);

/*
 * proxy_backend_command - send "line\r\n" and read the reply. line must
 * hold no CR or LF (PANIC otherwise: callers build it from checked
 * parts). Returns as proxy_backend_read_reply.
 */
int	proxy_backend_command(struct proxy_backend *b, const char *line,
	    struct proxy_reply *r, int timeout_ms, char *err, size_t errlen);

/* proxy_backend_parse_ehlo - set b->caps, b->size, b->xclient, b->auth from a
 * 250 reply to EHLO. */
void	proxy_backend_parse_ehlo(struct proxy_backend *b,
	    const struct proxy_reply *r);

/*
 * proxy_backend_xclient_line - "XCLIENT ADDR=... PORT=... NAME=...
 * PROTO=... HELO=..." with the attributes the backend offered (xtext
 * encoded, RFC 1891). name/helo may be NULL. Returns 0, or -1 when the
 * backend offers no XCLIENT or the line would not fit.
 */
int	proxy_backend_xclient_line(const struct proxy_backend *b, char *out,
	    size_t outlen, const char *ip, int port, const char *name,
	    const char *proto, const char *helo);

/* proxy_backend_close - QUIT (best effort, short wait) and close. */
void	proxy_backend_close(struct proxy_backend *b);

/*
 * proxy_reply_put - queue reply r on io as code, text lines, CRLF;
 * control characters in the text become spaces. first, when not NULL,
 * replaces the text of the first line.
 */
int	proxy_reply_put(struct proxy_io *io, const struct proxy_reply *r,
	    const char *first);

#endif
