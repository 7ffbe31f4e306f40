/*
 * meta.c - fuzz target: the expressions of meta rules (policy/meta.c).
 * The input, as a string, is compiled; a compiled expression is
 * evaluated with a few sets of symbols and its symbol list is read.
 */
#include "fuzz.h"
#include "meta.h"

/* fuzz_has - symbol present when the bit of its length is in *set. */
static int
fuzz_has(void *arg, const char *name)
{
	return (*(unsigned *)arg >> (strlen(name) % 8)) & 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_str(data, size), err[256];
	struct meta_expr *m = meta_compile(text, err, sizeof(err));

	if (m != NULL) {
		for (unsigned set = 0; set < 256; set += 37)
			(void)meta_eval(m, fuzz_has, &set);
		for (size_t i = 0; i < meta_nsyms(m); i++)
			(void)strlen(meta_sym(m, i));
		meta_free(m);
	}
	free(text);
	return 0;
}
