/*
 * spf_record.c - fuzz target: SPF record syntax (policy/spf_record.c).
 *
 * The input is a TXT record's text, given with its exact length and no
 * NUL after it (as the DNS layer hands it over): validated; when valid,
 * rewritten for both address families, and the rewrite must validate
 * too. The input also goes through the explanation check.
 */
#include "fuzz.h"
#include "spf_record.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *txt = xmalloc(size ? size : 1), why[256];

	memcpy(txt, data, size);
	(void)chk_spfrec_exp_ok(txt, size);
	if (chk_spfrec_validate(txt, size, why, sizeof(why)) == 0) {
		for (int family = 4; family <= 6; family += 2) {
			int any = -1;
			char *r = chk_spfrec_rewrite(txt, size, family, &any);
			if (r == NULL || (any != 0 && any != 1))
				abort();
			free(r);
		}
	}
	free(txt);
	return 0;
}
