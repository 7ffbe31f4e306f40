/*
 * replay.c - run a fuzz target without libFuzzer: main() calls the
 * target's LLVMFuzzerTestOneInput() once for each file named on the
 * command line; a directory stands for every regular file inside it, in
 * name order. Linked into $(B)/tests/fuzz/NAME with each target, so the
 * corpus and found crashes run in the normal and the sanitizer builds
 * (tests/suites/fuzz_replay.sh).
 *
 * Each file is read into a buffer of exactly its size, so that a read
 * past the end is seen by AddressSanitizer. Exit status: 0 when every
 * input ran, 1 when one could not be read, a target returned non-zero
 * or there was no input at all, 2 on a usage error. A crash or a
 * sanitizer report ends the process with its own status.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* replay_file - run the target on one file; 0, or -1 with a message. */
static int
replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	uint8_t *data;
	size_t n;
	int rc;

	if (fp == NULL || fstat(fileno(fp), &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (fp)
			fclose(fp);
		return -1;
	}
	n = (size_t)st.st_size;
	data = xmalloc(n ? n : 1);
	if (fread(data, 1, n, fp) != n) {
		fprintf(stderr, "replay: %s: short read\n", path);
		fclose(fp);
		free(data);
		return -1;
	}
	fclose(fp);
	printf("run %s (%zu bytes)\n", path, n);
	fflush(stdout);
	rc = LLVMFuzzerTestOneInput(data, n);
	free(data);
	if (rc != 0) {
		fprintf(stderr, "replay: %s: target returned %d\n", path, rc);
		return -1;
	}
	return 0;
}

/* replay_regular - 1 if dir/name is a regular file. */
static int
replay_regular(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct stat st;
	int r = stat(path, &st) == 0 && S_ISREG(st.st_mode);

	free(path);
	return r;
}

/* replay_dir - every regular file of dir, sorted; *ran counts them. */
static int
replay_dir(const char *dir, int *ran)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), bad = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (replay_regular(dir, ents[i]->d_name)) {
			char *path = xasprintf("%s/%s", dir, ents[i]->d_name);
			if (replay_file(path) != 0)
				bad = 1;
			(*ran)++;
			free(path);
		}
		free(ents[i]);
	}
	free(ents);
	return bad ? -1 : 0;
}

int
main(int argc, char **argv)
{
	int bad = 0, ran = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			bad = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &ran) != 0)
				bad = 1;
		} else {
			if (replay_file(argv[i]) != 0)
				bad = 1;
			ran++;
		}
	}
	if (ran == 0) {
		fprintf(stderr, "replay: no input files\n");
		bad = 1;
	}
	printf("%d input%s run%s\n", ran, ran == 1 ? "" : "s",
	    bad ? ", with errors" : "");
	return bad;
}
