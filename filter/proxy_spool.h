/*
 * proxy_spool.h - where the proxy keeps one message while it is received
 * and checked: in memory up to a threshold, then in an unlinked
 * temporary file. Owned by one session; freed after the message is
 * relayed or refused, so nothing is ever queued inside mxwarden.
 */
#ifndef MXW_PROXY_SPOOL_H
#define MXW_PROXY_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

struct proxy_spool {
	struct buf	 mem;		/* the message, or the file's write buffer */
	size_t		 mem_max;	/* in memory up to this many bytes */
	int		 fd;		/* temporary file, -1 while in memory */
	char		*dir;		/* where the file goes */
	size_t		 len;		/* bytes stored */
};

/* proxy_spool_init - empty spool; dir is copied. */
void	proxy_spool_init(struct proxy_spool *s, size_t mem_max, const char *dir);
/* proxy_spool_free - forget the message (the file is already unlinked). */
void	proxy_spool_free(struct proxy_spool *s);

/* proxy_spool_append - add bytes. 0, or -1 with a reason (file error). */
int	proxy_spool_append(struct proxy_spool *s, const void *p, size_t n,
	    char *err, size_t errlen);

/* proxy_spool_finish - make everything readable (flush to the file). */
int	proxy_spool_finish(struct proxy_spool *s, char *err, size_t errlen);

/* proxy_spool_read - up to n bytes from offset off: the count, 0 at the
 * end, -1 on a read error. Only after proxy_spool_finish(). */
ssize_t	proxy_spool_read(struct proxy_spool *s, size_t off, void *p, size_t n);

/* proxy_spool_in_file - non-zero once the message went to a file. */
int	proxy_spool_in_file(const struct proxy_spool *s);

#endif
