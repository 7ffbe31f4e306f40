/*
 * proxy_verb.c - fuzz target: the SMTP proxy's command parsers
 * (filter/proxy_verb.c). The input is one command line as the proxy's
 * line reader hands it over (NUL-terminated, no line end): verb lookup,
 * the allowed states, MAIL/RCPT paths with both keywords and the MAIL
 * parameters of whatever path parses.
 */
#include "fuzz.h"
#include "proxy_verb.h"

/* fuzz_path - parse arg as a path after kw, then its parameters. */
static void
fuzz_path(const char *arg, const char *kw)
{
	char addr[PROXY_PATH_MAX + 1], why[256], out[512];
	const char *params;
	unsigned long long size;

	if (proxy_parse_path(arg, kw, addr, sizeof(addr), &params, why,
	    sizeof(why)) != 0)
		return;
	(void)proxy_mail_params(params, &size, out, sizeof(out), why,
	    sizeof(why));
	/* A short output buffer: the parser must refuse, not overflow. */
	(void)proxy_mail_params(params, &size, out, 8, why, 16);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = fuzz_str(data, size);
	const char *arg;
	const struct proxy_verb *v = proxy_verb_lookup(line, &arg);

	for (int s = PS_CONNECT; s <= PS_CLOSING; s++)
		(void)proxy_verb_allowed(v, (enum proxy_state)s);
	(void)proxy_state_name((enum proxy_state)(v->id % (PS_CLOSING + 1)));
	fuzz_path(arg, "FROM:");
	fuzz_path(arg, "TO:");
	free(line);
	return 0;
}
