/*
 * fuzz.h - helpers shared by the fuzz targets (tests/fuzz/NAME.c): the
 * libFuzzer entry point and ways to turn its bytes into C strings and
 * temporary files.
 *
 * Each target defines LLVMFuzzerTestOneInput(); it is run either by
 * libFuzzer (`make fuzz`) or by replay.c over a corpus (the fuzz_replay
 * suite). A target frees everything it got from these helpers before it
 * returns and keeps no state between calls.
 */
#ifndef MXW_FUZZ_H
#define MXW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_str - data[0..size) as a new NUL-terminated string (it ends at
 * the first NUL inside, as C code would see it). */
static inline char *
fuzz_str(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* fuzz_next - the next NUL-separated field of (*data, *size) as a new
 * string; *data and *size move past it and its NUL. The last field is
 * what remains (possibly ""). */
static inline char *
fuzz_next(const uint8_t **data, size_t *size)
{
	const uint8_t *nul = memchr(*data, '\0', *size);
	size_t n = nul ? (size_t)(nul - *data) : *size;
	char *s = fuzz_str(*data, n);

	*data += nul ? n + 1 : n;
	*size -= nul ? n + 1 : n;
	return s;
}

/* fuzz_tmpfile - a new file under $TMPDIR (default P_tmpdir) holding
 * data[0..size). Its path, or NULL; fuzz_tmpfile_done() removes it. */
static inline char *
fuzz_tmpfile(const uint8_t *data, size_t size)
{
	const char *dir = getenv("TMPDIR");
	char *path = xasprintf("%s/mxw-fuzz-XXXXXX",
	    dir && *dir ? dir : P_tmpdir);
	int fd = mkstemp(path);

	if (fd < 0) {
		free(path);
		return NULL;
	}
	if (size > 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

/* fuzz_tmpfile_done - remove and free a fuzz_tmpfile() path (NULL: no-op). */
static inline void
fuzz_tmpfile_done(char *path)
{
	if (path == NULL)
		return;
	unlink(path);
	free(path);
}

#endif
