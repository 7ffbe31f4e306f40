/*
 * config.c - fuzz target: the mxwarden.conf parser (filter/config.c).
 *
 * Input: the config file, then NUL-separated "key=value" overrides (as
 * given with -o). The file is written to a temporary file (cfg_load()
 * reads a path). A loaded config is printed, with and without the
 * documentation, into memory.
 */
#include "config.h"
#include "fuzz.h"

#define FUZZ_MAX_OVERRIDES	16

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t flen = nul ? (size_t)(nul - data) : size;
	char *path = fuzz_tmpfile(data, flen);
	char *over[FUZZ_MAX_OVERRIDES], errs[4096];
	size_t nover = 0;

	if (path == NULL)
		return 0;
	if (nul != NULL) {
		data = nul + 1;
		size -= flen + 1;
		while (nover < FUZZ_MAX_OVERRIDES && (size > 0 || nover == 0))
			over[nover++] = fuzz_next(&data, &size);
	}
	struct cfg *c = cfg_load(path, over, nover, errs, sizeof(errs));
	if (c != NULL) {
		char *text = NULL;
		size_t len = 0;
		FILE *fp = open_memstream(&text, &len);
		if (fp != NULL) {
			cfg_print(c, 0, fp);
			cfg_print(c, 1, fp);
			fclose(fp);
		}
		free(text);
	}
	cfg_free(c);
	for (size_t i = 0; i < nover; i++)
		free(over[i]);
	fuzz_tmpfile_done(path);
	return 0;
}
