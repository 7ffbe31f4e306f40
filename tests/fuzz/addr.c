/*
 * addr.c - fuzz target: envelope address parsing (policy/addr.c). The
 * input, as a string, is parsed as an address and checked as a domain;
 * a parsed address must have a NUL-terminated local part and domain.
 */
#include "addr.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size);
	struct addr a;
	enum addr_status st;

	memset(&a, 0x55, sizeof(a));	/* no help from zeroed fields */
	st = addr_parse(in, &a);
	(void)addr_status_name(st);
	if (st == ADDR_OK) {
		if (memchr(a.local, '\0', sizeof(a.local)) == NULL ||
		    memchr(a.domain, '\0', sizeof(a.domain)) == NULL)
			abort();
		(void)addr_is_routed(&a);
		if (!a.literal)
			(void)addr_domain_ok(a.domain);
	}
	(void)addr_domain_ok(in);
	free(in);
	return 0;
}
