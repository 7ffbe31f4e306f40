/*
 * buf.h - a growable byte buffer with a hard maximum.
 *
 * The data is always NUL-terminated (the NUL is not counted in len), so
 * text can be used as a C string. Appending past the maximum fails and
 * leaves the buffer unchanged: callers decide what an overlong input
 * means. Not thread-safe: one owner at a time.
 */
#ifndef MXW_BUF_H
#define MXW_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;		/* hard limit on len */
};

void	buf_init(struct buf *b, size_t max);
void	buf_free(struct buf *b);	/* frees data; b may be reused after buf_init */
void	buf_reset(struct buf *b);	/* len = 0, keeps memory */
/* buf_append - 0, or -1 when len + n would exceed max (nothing appended). */
int	buf_append(struct buf *b, const void *p, size_t n);
int	buf_puts(struct buf *b, const char *s);
int	buf_printf(struct buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
