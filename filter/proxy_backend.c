/*
 * proxy_backend.c - the SMTP client side of the proxy.
 *
 * Called by proxy_session.c: one backend connection per client session,
 * opened only after the connect-stage checks passed (a refused zombie
 * costs the backend nothing), used in lockstep (one command, one reply)
 * and closed with the session (or kept for the next one, with
 * proxy_backend_reuse). Every wait is bounded by the caller's
 * timeout; a backend that breaks the reply syntax, goes silent or drops
 * the connection makes the call fail, never the process.
 *
 * Owned by one session (run by one worker at a time), or kept between
 * sessions by proxy_bepool.c. getaddrinfo() is thread-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy_backend.h"
#include "util.h"

void
proxy_reply_init(struct proxy_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text, PROXY_REPLY_LINES_MAX * (PROXY_REPLY_LINE_MAX + 1));
}

void
proxy_reply_free(struct proxy_reply *r)
{
	buf_free(&r->text);
	r->nlines = 0;
	r->code = 0;
}

/* proxy_backend_split - "host:port" / "[addr]:port" into parts. */
static int
proxy_backend_split(const char *spec, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *colon;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		if ((size_t)(rb - spec - 1) >= hostlen)
			return -1;
		memcpy(host, spec + 1, (size_t)(rb - spec - 1));
		host[rb - spec - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || (size_t)(colon - spec) >= hostlen)
			return -1;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
	}
	if (host[0] == '\0' || colon[1] == '\0')
		return -1;
	return str_copy(port, colon + 1, portlen);
}

/* proxy_backend_connected - fd has connected: b is ready. 0. */
static int
proxy_backend_connected(struct proxy_backend *b, int fd)
{
	int one = 1;

	/* One write per reply or command; no Nagle delays in lockstep. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	freeaddrinfo(b->ais);
	b->ais = b->ai = NULL;
	b->io.fd = -1;
	proxy_io_init(&b->io, fd, b->write_ms);
	b->connected = 1;
	return 0;
}

/* proxy_backend_connect_next - a non-blocking connect to b->ai, then to
 * the addresses after it, until one connects (0) or is in progress (1,
 * its socket in b->io.fd); -1 with the last reason in err when none is
 * left. */
static int
proxy_backend_connect_next(struct proxy_backend *b, char *err, size_t errlen)
{
	for (; b->ai != NULL; b->ai = b->ai->ai_next) {
		int fd = socket(b->ai->ai_family, b->ai->ai_socktype |
		    SOCK_CLOEXEC | SOCK_NONBLOCK, b->ai->ai_protocol);

		if (fd < 0) {
			str_fmt(err, errlen, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, b->ai->ai_addr, b->ai->ai_addrlen) == 0)
			return proxy_backend_connected(b, fd);
		if (errno == EINPROGRESS) {
			b->io.fd = fd;
			return 1;
		}
		str_fmt(err, errlen, "connect: %s", strerror(errno));
		close(fd);
	}
	freeaddrinfo(b->ais);
	b->ais = NULL;
	return -1;
}

int
proxy_backend_connect_start(struct proxy_backend *b, const char *spec,
    int write_ms, char *err, size_t errlen)
{
	struct addrinfo hints;
	char host[256], port[32];
	int r;

	memset(b, 0, sizeof(*b));
	b->io.fd = -1;
	b->write_ms = write_ms;
	str_copy(b->name, spec, sizeof(b->name));
	if (proxy_backend_split(spec, host, sizeof(host), port, sizeof(port)) != 0) {
		str_fmt(err, errlen, "bad backend address \"%s\"", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &b->ais)) != 0) {
		str_fmt(err, errlen, "backend %s: %s", spec, gai_strerror(r));
		b->ais = NULL;
		return -1;
	}
	b->ai = b->ais;
	return proxy_backend_connect_next(b, err, errlen);
}

int
proxy_backend_connect_step(struct proxy_backend *b, int timed_out,
    int connect_ms, char *err, size_t errlen)
{
	int fd = b->io.fd, soerr = 0;
	socklen_t sl = sizeof(soerr);

	b->io.fd = -1;
	if (timed_out)
		str_fmt(err, errlen, "connect: timed out after %d ms", connect_ms);
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
	    soerr != 0)
		str_fmt(err, errlen, "connect: %s", strerror(soerr ? soerr : errno));
	else
		return proxy_backend_connected(b, fd);
	close(fd);
	b->ai = b->ai->ai_next;
	return proxy_backend_connect_next(b, err, errlen);
}

/* proxy_reply_line_ok - "DDD", "DDD text" or "DDD-text". */
static int
proxy_reply_line_ok(const char *s, size_t len)
{
	return len >= 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' &&
	    s[1] <= '9' && s[2] >= '0' && s[2] <= '9' &&
	    (len == 3 || s[3] == ' ' || s[3] == '-');
}

void
proxy_backend_reply_begin(struct proxy_reply *r)
{
	buf_reset(&r->text);
	r->nlines = 0;
	r->code = 0;
}

int
proxy_backend_reply_more(struct proxy_backend *b, struct proxy_reply *r,
    int timeout_ms, char *err, size_t errlen)
{
	size_t len;

	if (!b->connected) {
		str_fmt(err, errlen, "not connected");
		return -1;
	}
	for (;;) {
		/* b->line: a line begun before a PL_AGAIN goes on there. */
		enum proxy_line_status st = proxy_io_read_line(&b->io, b->line,
		    sizeof(b->line), PROXY_REPLY_LINE_MAX, &len, timeout_ms);
		const char *line = b->line;
		int code;

		if (st == PL_AGAIN)
			return 0;
		if (st == PL_TIMEOUT || st == PL_EOF || st == PL_ERROR) {
			str_fmt(err, errlen, "%s while reading a reply",
			    st == PL_TIMEOUT ? "timeout" : st == PL_EOF ?
			    "connection closed" : "read error");
			b->connected = 0;
			return -1;
		}
		/* A lenient reader here: bare LF ends a line too; a NUL or
		 * a CR inside a reply line is a protocol error. */
		if ((st != PL_OK && st != PL_BARE_LF) || !proxy_reply_line_ok(line, len)) {
			str_fmt(err, errlen, "malformed reply line (%s)",
			    proxy_line_status_name(st));
			b->connected = 0;
			return -1;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (r->nlines > 0 && code != r->code) {
			str_fmt(err, errlen, "reply code changes inside a reply");
			b->connected = 0;
			return -1;
		}
		r->code = code;
		if (r->nlines == PROXY_REPLY_LINES_MAX) {
			str_fmt(err, errlen, "reply longer than %d lines",
			    PROXY_REPLY_LINES_MAX);
			b->connected = 0;
			return -1;
		}
		buf_append(&r->text, len > 4 ? line + 4 : "", len > 4 ? len - 4 : 0);
		buf_append(&r->text, "\n", 1);
		r->nlines++;
		if (len == 3 || line[3] == ' ')
			return 1;
	}
}

int
proxy_backend_read_reply(struct proxy_backend *b, struct proxy_reply *r,
    int timeout_ms, char *err, size_t errlen)
{
	if (timeout_ms == PROXY_IO_NOWAIT)
		PANIC("proxy_backend_read_reply: a wait is needed");
	proxy_backend_reply_begin(r);
	return proxy_backend_reply_more(b, r, timeout_ms, err, errlen) == 1 ?
	    0 : -1;
}

int
proxy_backend_send(struct proxy_backend *b, const char *line, char *err,
    size_t errlen)
{
	if (strpbrk(line, "\r\n") != NULL)
		PANIC("proxy_backend_send: line end in a command");
	if (!b->connected) {
		str_fmt(err, errlen, "not connected");
		return -1;
	}
	if (proxy_io_printf(&b->io, "%s\r\n", line) != 0 ||
	    proxy_io_flush(&b->io) != 0) {
		str_fmt(err, errlen, "write error");
		b->connected = 0;
		return -1;
	}
	return 0;
}

int
proxy_backend_command(struct proxy_backend *b, const char *line,
    struct proxy_reply *r, int timeout_ms, char *err, size_t errlen)
{
	if (proxy_backend_send(b, line, err, errlen) != 0)
		return -1;
	return proxy_backend_read_reply(b, r, timeout_ms, err, errlen);
}

void
proxy_backend_parse_ehlo(struct proxy_backend *b, const struct proxy_reply *r)
{
	const char *p = r->text.data ? r->text.data : "";
	size_t i = 0;

	b->caps = 0;
	b->size = 0;
	b->xclient[0] = '\0';
	b->auth[0] = '\0';
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char l[PROXY_REPLY_LINE_MAX + 1];

		memcpy(l, p, len);
		l[len] = '\0';
		p += len + (nl != NULL);
		if (i++ == 0)
			continue;	/* the greeting line */
		if (strcasecmp(l, "PIPELINING") == 0)
			b->caps |= PB_CAP_PIPELINING;
		else if (strcasecmp(l, "8BITMIME") == 0)
			b->caps |= PB_CAP_8BITMIME;
		else if (strcasecmp(l, "ENHANCEDSTATUSCODES") == 0)
			b->caps |= PB_CAP_ENHANCED;
		else if (strcasecmp(l, "SMTPUTF8") == 0)
			b->caps |= PB_CAP_SMTPUTF8;
		else if (strcasecmp(l, "STARTTLS") == 0)
			b->caps |= PB_CAP_STARTTLS;
		else if (strcasecmp(l, "CHUNKING") == 0)
			b->caps |= PB_CAP_CHUNKING;
		else if (strncasecmp(l, "SIZE", 4) == 0 &&
		    (l[4] == '\0' || l[4] == ' ')) {
			b->caps |= PB_CAP_SIZE;
			b->size = l[4] ? strtoull(l + 5, NULL, 10) : 0;
		} else if (strncasecmp(l, "AUTH ", 5) == 0 && l[5] != '\0') {
			b->caps |= PB_CAP_AUTH;
			str_copy(b->auth, l + 5, sizeof(b->auth));
			for (char *q = b->auth; *q; q++)
				if ((unsigned char)*q < 0x20 || *q == 0x7f)
					*q = ' ';
		} else if (strncasecmp(l, "XCLIENT", 7) == 0 &&
		    (l[7] == '\0' || l[7] == ' ')) {
			b->caps |= PB_CAP_XCLIENT;
			str_copy(b->xclient, l[7] ? l + 8 : "", sizeof(b->xclient));
		}
	}
}

/* proxy_xtext - RFC 1891 xtext of s appended to out. */
static int
proxy_xtext(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(out);

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 33 || c > 126 || c == '+' || c == '=') {
			if (n + 3 >= outlen)
				return -1;
			snprintf(out + n, outlen - n, "+%02X", c);
			n += 3;
		} else {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = (char)c;
			out[n] = '\0';
		}
	}
	return 0;
}

/* proxy_xclient_offers - attr is in the backend's XCLIENT list. */
static int
proxy_xclient_offers(const struct proxy_backend *b, const char *attr)
{
	char tmp[sizeof(b->xclient)], *save = NULL;

	str_copy(tmp, b->xclient, sizeof(tmp));
	for (char *t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (strcasecmp(t, attr) == 0)
			return 1;
	return 0;
}

static int
proxy_xclient_attr(const struct proxy_backend *b, char *out, size_t outlen,
    const char *attr, const char *val)
{
	size_t n = strlen(out);

	if (val == NULL || !proxy_xclient_offers(b, attr))
		return 0;
	if (str_fmt(out + n, outlen - n, " %s=", attr) != 0)
		return -1;
	return proxy_xtext(out, outlen, val);
}

int
proxy_backend_xclient_line(const struct proxy_backend *b, char *out,
    size_t outlen, const char *ip, int port, const char *name,
    const char *proto, const char *helo)
{
	char addr[80], portstr[16];

	if (!(b->caps & PB_CAP_XCLIENT))
		return -1;
	if (str_fmt(addr, sizeof(addr), "%s%s", strchr(ip, ':') ? "IPV6:" : "",
	    ip) != 0 || str_copy(out, "XCLIENT", outlen) != 0)
		return -1;
	str_fmt(portstr, sizeof(portstr), "%d", port);
	if (proxy_xclient_attr(b, out, outlen, "NAME",
	    name != NULL ? name : "[UNAVAILABLE]") != 0 ||
	    proxy_xclient_attr(b, out, outlen, "ADDR", addr) != 0 ||
	    proxy_xclient_attr(b, out, outlen, "PORT", portstr) != 0 ||
	    proxy_xclient_attr(b, out, outlen, "PROTO", proto) != 0 ||
	    proxy_xclient_attr(b, out, outlen, "HELO", helo) != 0)
		return -1;
	return strlen(out) + 2 <= PROXY_CMD_LINE_MAX ? 0 : -1;
}

void
proxy_backend_close(struct proxy_backend *b)
{
	if (b->connected) {
		struct proxy_reply r;
		char err[128];

		proxy_reply_init(&r);
		(void)proxy_backend_command(b, "QUIT", &r, 2000, err, sizeof(err));
		proxy_reply_free(&r);
	}
	b->connected = 0;
	if (b->io.in != NULL || b->io.fd >= 0)
		proxy_io_close(&b->io);
	if (b->ais != NULL)
		freeaddrinfo(b->ais);	/* closed while connecting */
	b->ais = b->ai = NULL;
}

int
proxy_reply_put(struct proxy_io *io, const struct proxy_reply *r,
    const char *first)
{
	const char *p = r->text.data ? r->text.data : "";
	size_t i = 0;
	int rc = 0;

	if (r->nlines == 0)
		return proxy_io_printf(io, "%03d %s\r\n", r->code,
		    first ? first : "");
	while (*p != '\0' && i < r->nlines) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char l[PROXY_REPLY_LINE_MAX + 1];

		memcpy(l, p, len);
		l[len] = '\0';
		p += len + (nl != NULL);
		for (char *q = l; *q; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				*q = ' ';
		i++;
		rc |= proxy_io_printf(io, "%03d%c%s\r\n", r->code,
		    i == r->nlines ? ' ' : '-', i == 1 && first ? first : l);
	}
	return rc;
}
