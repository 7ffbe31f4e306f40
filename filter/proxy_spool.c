/*
 * proxy_spool.c - one message in memory, or in an unlinked temporary
 * file once it outgrows proxy_spool_memory.
 *
 * Called by proxy_session.c while DATA is received, then read back by
 * proxy_msg.c to run the checks and to send the message to the backend.
 * The temporary file is created with mkstemp() (mode 0600) and unlinked
 * at once: a crash leaves nothing behind and no other user can open it.
 * Owned by one session, run by one worker at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy_spool.h"
#include "util.h"

#define PROXY_SPOOL_WBUF	65536	/* write buffer once in a file */

void
proxy_spool_init(struct proxy_spool *s, size_t mem_max, const char *dir)
{
	memset(s, 0, sizeof(*s));
	s->mem_max = mem_max;
	s->fd = -1;
	s->dir = xstrdup(dir != NULL && *dir != '\0' ? dir : "/tmp");
	buf_init(&s->mem, mem_max > PROXY_SPOOL_WBUF ? mem_max : PROXY_SPOOL_WBUF);
}

void
proxy_spool_free(struct proxy_spool *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	buf_free(&s->mem);
	free(s->dir);
	s->dir = NULL;
	s->len = 0;
}

int
proxy_spool_in_file(const struct proxy_spool *s)
{
	return s->fd >= 0;
}

static int
proxy_spool_write_all(struct proxy_spool *s, const char *p, size_t n,
    char *err, size_t errlen)
{
	while (n > 0) {
		ssize_t w = write(s->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			str_fmt(err, errlen, "spool file write: %s",
			    w < 0 ? strerror(errno) : "short write");
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* proxy_spool_to_file - move what is in memory into a new temp file. */
static int
proxy_spool_to_file(struct proxy_spool *s, char *err, size_t errlen)
{
	char *path = xasprintf("%s/mxwarden-spool.XXXXXX", s->dir);
	int fd = mkostemp(path, O_CLOEXEC);

	if (fd < 0) {
		str_fmt(err, errlen, "spool file in %s: %s", s->dir, strerror(errno));
		free(path);
		return -1;
	}
	unlink(path);
	free(path);
	s->fd = fd;
	if (proxy_spool_write_all(s, s->mem.data, s->mem.len, err, errlen) != 0)
		return -1;
	buf_free(&s->mem);
	buf_init(&s->mem, PROXY_SPOOL_WBUF);
	return 0;
}

int
proxy_spool_append(struct proxy_spool *s, const void *p, size_t n, char *err,
    size_t errlen)
{
	if (s->fd < 0 && s->len + n > s->mem_max &&
	    proxy_spool_to_file(s, err, errlen) != 0)
		return -1;
	if (s->fd >= 0 && s->mem.len + n > PROXY_SPOOL_WBUF) {
		if (proxy_spool_write_all(s, s->mem.data, s->mem.len, err,
		    errlen) != 0)
			return -1;
		buf_reset(&s->mem);
		if (n > PROXY_SPOOL_WBUF) {
			if (proxy_spool_write_all(s, p, n, err, errlen) != 0)
				return -1;
			s->len += n;
			return 0;
		}
	}
	if (buf_append(&s->mem, p, n) != 0) {
		str_fmt(err, errlen, "spool buffer full");
		return -1;
	}
	s->len += n;
	return 0;
}

int
proxy_spool_finish(struct proxy_spool *s, char *err, size_t errlen)
{
	if (s->fd < 0 || s->mem.len == 0)
		return 0;
	if (proxy_spool_write_all(s, s->mem.data, s->mem.len, err, errlen) != 0)
		return -1;
	buf_reset(&s->mem);
	return 0;
}

ssize_t
proxy_spool_read(struct proxy_spool *s, size_t off, void *p, size_t n)
{
	if (off >= s->len)
		return 0;
	if (n > s->len - off)
		n = s->len - off;
	if (s->fd < 0) {
		memcpy(p, s->mem.data + off, n);
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t r = pread(s->fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}
