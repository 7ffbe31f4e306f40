/*
 * proxy_pp.c - fuzz target: the PROXY protocol header parser and the
 * CIDR lists of the proxy's settings (filter/proxy_pp.c).
 *
 * The whole input is a header as a client's first bytes (given with its
 * exact length, as the proxy's read buffer would be); every prefix is
 * parsed too, since the proxy asks again each time more bytes arrive.
 * A parsed source address is looked up in a list. Then the input as a
 * string is checked as a list and used as one for a few addresses.
 */
#include "fuzz.h"
#include "proxy_pp.h"

/* fuzz_parse - parse p[0..n) (a copy of exactly n bytes). */
static int
fuzz_parse(const uint8_t *data, size_t n, struct proxy_pp_addr *a)
{
	unsigned char *p = xmalloc(n ? n : 1);
	char err[256];
	size_t used = 0;
	int r;

	memcpy(p, data, n);
	r = proxy_pp_parse(p, n, &used, a, err, sizeof(err));
	free(p);
	if (r == 1 && used > n)
		abort();	/* claims more than it was given */
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ips[] = { "192.0.2.1", "10.1.2.3", "::1",
	    "2001:db8::1", "::ffff:192.0.2.1", "not-an-ip", "" };
	struct proxy_pp_addr a;
	char err[256], *list;

	if (fuzz_parse(data, size, &a) == 1 && !a.local)
		(void)proxy_ip_in_list(a.src, "10.0.0.0/8 192.0.2.0/24, ::1");
	for (size_t n = 0; n < size && n < PROXY_PP_MAX; n++)
		if (fuzz_parse(data, n, &a) != 0)
			break;
	list = fuzz_str(data, size);
	(void)proxy_ip_list_check(list, err, sizeof(err));
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++)
		(void)proxy_ip_in_list(ips[i], list);
	free(list);
	return 0;
}
