/*
 * proxy_msg.h - a spooled message as the proxy sees it at end of DATA:
 * its header fields parsed, fed to the engine (headers, body, end of
 * message), then written to the backend with the engine's header edits
 * (t->hdrop[]) applied and dot-stuffed.
 */
#ifndef MXW_PROXY_MSG_H
#define MXW_PROXY_MSG_H

#include <stddef.h>

struct txn;
struct verdict;
struct proxy_io;
struct proxy_spool;

struct proxy_msg_field {
	size_t	 off, len;	/* raw bytes in the spool, CRLFs included */
	char	*name;		/* field name as received */
	int	 deleted;
};

struct proxy_msg {
	struct proxy_msg_field *f;
	size_t		 nf;
	char		*hdr;		/* the header block as received */
	size_t		 hdr_len;
	size_t		 rest_off;	/* where the rest begins (the empty line,
					 * or the first body line) */
	size_t		 body_off;	/* where the body begins for the checks */
};

/*
 * proxy_msg_parse - read the header block of the spooled message (at
 * most max_hdr bytes). Returns 0, or -1 with an SMTP reply in why
 * ("552 5.3.4 ..." header too large, "451 4.3.0 ..." read error).
 */
int	proxy_msg_parse(struct proxy_msg *m, struct proxy_spool *sp,
	    size_t max_hdr, char *why, size_t whylen);

/*
 * proxy_msg_eval - feed the parsed message to the engine: one
 * TXN_EV_HEADER per field, TXN_EV_EOH, the body in chunks, TXN_EV_EOM;
 * stops at the first decision. Returns the verdict (also in *v). A
 * spool read error gives VERDICT_TEMPFAIL with a 451 reply.
 */
int	proxy_msg_eval(struct proxy_msg *m, struct txn *t, struct proxy_spool *sp,
	    struct verdict *v);

/*
 * proxy_msg_write - queue the message for the backend: header fields
 * with t->hdrop[] applied (deletions by occurrence among the fields as
 * received, insertions before the n-th received field, additions at the
 * end of the header block), then the rest, dot-stuffed, then ".". The
 * output is flushed as it grows; returns 0, or -1 on a write or spool
 * read error.
 */
int	proxy_msg_write(struct proxy_msg *m, const struct txn *t,
	    struct proxy_spool *sp, struct proxy_io *out);

/*
 * proxy_msg_write_bdat - the same message for a backend that offers
 * CHUNKING (RFC 3030): "BDAT n LAST", then the message as it is (no
 * dot-stuffing, no final dot), n its exact size. One reply answers it
 * all: the DATA command's round trip is saved. 0, or -1 on a write or
 * spool read error.
 */
int	proxy_msg_write_bdat(struct proxy_msg *m, const struct txn *t,
	    struct proxy_spool *sp, struct proxy_io *out);

/* proxy_msg_apply_deletes - mark the fields t->hdrop[] deletes (called
 * by proxy_msg_write and proxy_msg_write_bdat; public for the unit
 * test). */
void	proxy_msg_apply_deletes(struct proxy_msg *m, const struct txn *t);

void	proxy_msg_free(struct proxy_msg *m);

#endif
