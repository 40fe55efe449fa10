#!/bin/sh
# Runs every fuzz target over its committed corpus: each file of
# tests/fuzz/corpus/TARGET/ once through tests/fuzz/fuzz_TARGET (the
# standalone driver, or libFuzzer, which runs the files it is given and
# stops).  A crash, an abort or a sanitizer report fails the target; its
# output is shown.  Ends with "fuzz-corpus: N passed, N failed", N
# counting inputs that ran and targets that failed.
set -u

src=${CREWD_SRCDIR:-.}
build=${CREWD_BUILDDIR:-.}
out=${TMPDIR:-/tmp}/crewd-fuzz-corpus.$$
trap 'rm -f "$out"' EXIT

passed=0
failed=0
for corpus in "$src"/tests/fuzz/corpus/*/; do
    target=$(basename "$corpus")
    prog=$build/tests/fuzz/fuzz_$target
    if [ ! -x "$prog" ]; then
        echo "fuzz_$target: not built ($prog)"
        failed=$((failed + 1))
        continue
    fi
    set -- "$corpus"*
    if [ ! -e "$1" ]; then
        echo "fuzz_$target: empty corpus $corpus"
        failed=$((failed + 1))
        continue
    fi
    "$prog" "$@" > "$out" 2>&1
    status=$?
    ran=$(grep -c '^Executed ' "$out")
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$out"
        echo "fuzz_$target: FAILED (exit $status) after $ran of $# inputs"
        failed=$((failed + 1))
    else
        echo "fuzz_$target: $# inputs, no finding"
    fi
    passed=$((passed + ran))
done
echo "fuzz-corpus: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
