#!/usr/bin/env bash
# fuzz_replay.sh - every fuzz target run over its committed corpus.
#
# tests/fuzz/corpus/NAME holds seed inputs and the reproducers of bugs
# the fuzzers found (crash-WHAT); $MXW_BUILD/tests/fuzz/NAME (built by
# `make unit-tests`, with tests/fuzz/replay.c as its main) runs the
# target on each. One TAP test per target: it fails when the binary
# exits non-zero (a crash, or a sanitizer report under the ASAN_OPTIONS
# and UBSAN_OPTIONS tests/run exports), and is skipped when the binary
# was not built.
set -u
# From the top of the tree, a relative $MXW_BUILD names the build.
cd "${MXW_TOP:-$(dirname "$0")/../..}" || exit 1
bin=${MXW_BUILD:-build}/tests/fuzz
corpus=tests/fuzz/corpus

n=0
for src in tests/fuzz/*.c; do
	name=$(basename "$src" .c)
	[ "$name" = replay ] && continue
	n=$((n + 1))
	if [ ! -x "$bin/$name" ]; then
		echo "ok $n - $name # SKIP $bin/$name not built (make unit-tests)"
		continue
	fi
	if [ ! -d "$corpus/$name" ]; then
		echo "not ok $n - $name: no corpus in tests/fuzz/corpus/$name"
		continue
	fi
	out=$("$bin/$name" "$corpus/$name" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok $n - $name ($(ls "$corpus/$name" | wc -l) inputs)"
	else
		echo "not ok $n - $name: exit status $rc"
		printf '%s\n' "$out" | tail -30 | sed 's/^/# /'
	fi
done
echo "1..$n"
