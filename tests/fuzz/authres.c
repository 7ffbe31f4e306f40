/*
 * authres.c - fuzz target: recognising Authentication-Results fields
 * that claim mxwarden's authserv-id (policy/authres.c), the check that
 * decides which incoming fields are forged and removed.
 *
 * Input: a header value, a NUL, an authserv-id (default
 * "mx.example.org" when there is no NUL). The value is also checked
 * against itself as the id. The id is written back as an RFC 8601
 * value (token or quoted-string).
 */
#include "authres.h"
#include "buf.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int has_id = memchr(data, '\0', size) != NULL;
	char *value = fuzz_next(&data, &size);
	char *id = has_id ? fuzz_next(&data, &size) : xstrdup("mx.example.org");
	struct buf b;

	(void)authres_is_ours(value, id);
	(void)authres_is_ours(value, value);
	buf_init(&b, 1 << 16);
	authres_value(&b, id);
	buf_free(&b);
	free(value);
	free(id);
	return 0;
}
