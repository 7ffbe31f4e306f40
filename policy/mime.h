/*
 * mime.h - a streaming MIME decoder for content rules.
 *
 * The engine makes one decoder per message at end of headers, feeds it
 * every body chunk and finishes it at end of message; the rule
 * evaluator (policy/rules.c) then reads what it collected:
 *
 *   text        the decoded text of the message: every text/plain and
 *               text/html part that is not an attachment, with its
 *               quoted-printable or base64 encoding removed, converted
 *               to UTF-8 (iconv) from its charset, HTML tags stripped
 *               (script and style contents dropped, common entities
 *               decoded); parts are separated by a newline.
 *   raw         the body bytes as received (CRLF kept).
 *   attachments the file name (RFC 2231 / RFC 2047 decoded) and the
 *               media type of each part that has a file name or a
 *               "Content-Disposition: attachment".
 *
 * Memory is bounded: text and raw hold at most max_bytes each (the
 * rest is not kept; mime_flags() says MIME_F_TRUNCATED), a line is
 * handled in pieces of at most MIME_MAX_LINE bytes, part headers at most
 * 16 KiB, multipart nesting at most MIME_MAX_DEPTH, attachments at most
 * MIME_MAX_ATTACH. Broken MIME (no boundary, unterminated multipart,
 * bad base64) never fails: what can be decoded is, and MIME_F_BROKEN is
 * set. A charset iconv does not know is passed through as bytes.
 *
 * Thread safety: a decoder belongs to one transaction; the functions
 * are reentrant (iconv descriptors are opened per conversion).
 */
#ifndef MXW_MIME_H
#define MXW_MIME_H

#include <stddef.h>

#define MIME_MAX_LINE	8192
#define MIME_MAX_DEPTH	16
#define MIME_MAX_ATTACH	64

#define MIME_F_BROKEN		0x1	/* malformed structure or encoding */
#define MIME_F_TRUNCATED	0x2	/* more than max_bytes */

struct mime;

/*
 * mime_new - a decoder for a message whose top-level header block is
 * hdrs ("Name: value\n" lines, folding kept; only Content-Type and
 * Content-Transfer-Encoding are read). max_bytes bounds text and raw.
 */
struct mime	*mime_new(const char *hdrs, size_t max_bytes);
void		 mime_free(struct mime *m);
/* mime_feed - body bytes, in any chunking. */
void		 mime_feed(struct mime *m, const unsigned char *data, size_t len);
/* mime_finish - end of body: flushes the last line and part. */
void		 mime_finish(struct mime *m);

/* Results; valid until mime_free(). Strings are NUL-terminated. */
const char	*mime_text(const struct mime *m, size_t *len);
const char	*mime_raw(const struct mime *m, size_t *len);
size_t		 mime_nattach(const struct mime *m);
const char	*mime_attach_name(const struct mime *m, size_t i);	/* "" if none */
const char	*mime_attach_type(const struct mime *m, size_t i);
int		 mime_flags(const struct mime *m);

/*
 * mime_decode_header - RFC 2047 encoded words (=?cs?B|Q?...?=) of a
 * header value decoded to UTF-8, folding removed (CR and LF dropped);
 * white space between adjacent encoded words is dropped. Text that is
 * not a valid encoded word is kept as is. Returns a new string (free()).
 * At most maxlen bytes of output (cut at that length).
 */
char		*mime_decode_header(const char *value, size_t maxlen);

/*
 * mime_to_utf8 - append in[0..len) converted from charset to UTF-8 to
 * out (a struct buf *, as void * to keep buf.h out of this header).
 * Unknown charsets and bytes that do not convert pass through (the
 * latter as '?'). Returns 0, or -1 when out is full.
 */
int		 mime_to_utf8(const char *charset, const char *in, size_t len,
		    void *out);

#endif
