/*
 * rules.c - fuzz target: the rules file parser (policy/rules.c) and
 * what reads a loaded set.
 *
 * Input: the main rules file, a NUL, the local rules file (each written
 * to a temporary file: rules_load() reads files). A loaded set is
 * linted and queried. Inputs that name a list file ("file:PATH") are
 * skipped: the parser would read whatever file the fuzzer named. The
 * first line of the input is also parsed as a reply text and, split at
 * its first space, as an address and a CIDR.
 */
#include "fuzz.h"
#include "rules.h"

/* fuzz_query - read a loaded set the ways the engine does. */
static void
fuzz_query(const struct rules *r)
{
	char lint[4096];
	const char *reply;
	int set;

	(void)rules_lint(r, lint, sizeof(lint));
	for (int i = 0; i < RT_COUNT; i++)
		(void)rules_threshold(r, (enum rules_threshold)i, &set, &reply);
	for (size_t i = 0; i < rules_ratelimit_count(r); i++)
		(void)rules_rl_key_name(rules_ratelimit_get(r, i)->key);
	(void)rules_score(r, "SPF_FAIL");
	(void)rules_action(r, "DMARC_FAIL_REJECT");
	(void)rules_list_match(r, "internal_networks", "10.1.2.3");
	(void)rules_list_match(r, "bad_senders", "a@b.example");
	(void)rules_param(r, "greylist", "delay", 0);
	(void)rules_rx_count(r);
}

/* fuzz_helpers - the pure helpers on the text of the first line. */
static void
fuzz_helpers(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char *line = fuzz_str(data, nl ? (size_t)(nl - data) : size);
	char rcode[4], xcode[16], *sp = strchr(line, ' ');
	const char *text;

	(void)rules_parse_reply(line, rcode, xcode, &text);
	if (sp != NULL) {
		*sp = '\0';
		(void)rules_ip_in_cidr(line, sp + 1);
	}
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memmem(data, size, "file:", 5) != NULL)
		return 0;
	fuzz_helpers(data, size);

	const uint8_t *nul = memchr(data, '\0', size);
	size_t mlen = nul ? (size_t)(nul - data) : size;
	char *main_path = fuzz_tmpfile(data, mlen);
	char *local_path = nul ? fuzz_tmpfile(nul + 1, size - mlen - 1) : NULL;
	char errs[4096];

	if (main_path != NULL && (nul == NULL || local_path != NULL)) {
		struct rules *r = rules_load(main_path, local_path, 0, errs,
		    sizeof(errs));
		if (r != NULL)
			fuzz_query(r);
		rules_free(r);
	}
	fuzz_tmpfile_done(main_path);
	fuzz_tmpfile_done(local_path);
	return 0;
}
