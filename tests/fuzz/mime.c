/*
 * mime.c - fuzz target: the streaming MIME decoder, RFC 2047 header
 * decoding and charset conversion (policy/mime.c).
 *
 * Input: one control byte, then the top-level header block, a NUL, and
 * the body (any bytes). The control byte's low 7 bits + 1 are the chunk
 * size the body is fed in (lines and encodings split anywhere); its top
 * bit makes the decoder keep only 64 bytes (truncation paths). Every
 * accessor is read afterwards. The header block also goes through
 * mime_decode_header() (whole and cut short), and the body through
 * mime_to_utf8() from a charset picked by its length, among them one
 * named by the header block.
 */
#include "buf.h"
#include "fuzz.h"
#include "mime.h"

/* fuzz_decoder - decode body[0..n) in chunks under hdrs; read it all. */
static void
fuzz_decoder(const char *hdrs, const uint8_t *body, size_t n, size_t chunk,
    size_t max)
{
	struct mime *m = mime_new(hdrs, max);
	size_t len;

	for (size_t off = 0; off < n; off += chunk)
		mime_feed(m, body + off, n - off < chunk ? n - off : chunk);
	mime_finish(m);
	if (strlen(mime_text(m, &len)) > len || strlen(mime_raw(m, &len)) > len)
		abort();	/* a length shorter than the string */
	for (size_t i = 0; i < mime_nattach(m); i++) {
		(void)strlen(mime_attach_name(m, i));
		(void)strlen(mime_attach_type(m, i));
	}
	(void)mime_attach_name(m, mime_nattach(m));	/* out of range */
	(void)mime_flags(m);
	mime_free(m);
}

/* fuzz_charset - body[0..n) converted from one of a few charsets
 * (picked by n: an iconv_open() per input is slow enough), into a
 * buffer of 64 bytes or 1 MiB. */
static void
fuzz_charset(const char *hdrs, const uint8_t *body, size_t n)
{
	const char *const cs[] = { "utf-8", "iso-8859-1", "windows-1252",
	    "utf-16", "shift_jis", "iso-2022-jp", "x-no-such-charset", hdrs };
	struct buf out;

	buf_init(&out, n / 8 % 2 ? 64 : 1 << 20);
	(void)mime_to_utf8(cs[n % 8], (const char *)body, n, &out);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)(data[0] & 0x7f) + 1;
	size_t max = data[0] & 0x80 ? 64 : 1 << 20;
	data++;
	size--;
	char *hdrs = fuzz_next(&data, &size);
	char *dec;

	fuzz_decoder(hdrs, data, size, chunk, max);
	dec = mime_decode_header(hdrs, 1 << 16);
	free(dec);
	dec = mime_decode_header(hdrs, chunk);
	if (strlen(dec) > chunk)
		abort();	/* longer than asked for */
	free(dec);
	fuzz_charset(hdrs, data, size);
	free(hdrs);
	return 0;
}
