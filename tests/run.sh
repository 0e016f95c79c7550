#!/bin/sh
# run.sh BUILD - runs every test binary from the repository root and sums
# their PASS/FAIL/SKIP lines. A binary that crashes or exits non-zero without
# a FAIL line counts as one failure. Ends with "N passed, N failed, N skipped".
set -u
build=${1:-build}
log=$build/test.log
: > "$log"
pass=0; fail=0; skip=0
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" >> "$log"
    p=$(printf '%s\n' "$out" | grep -c '^PASS ')
    f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
    s=$(printf '%s\n' "$out" | grep -c '^SKIP ')
    printf '%s\n' "$out" | grep -E '^(FAIL|SKIP) ' | sed "s/^/  $name: /"
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "  $name: exited with status $rc without a FAIL line (crash?); last lines:"
        printf '%s\n' "$out" | tail -5 | sed 's/^/    /'
        f=1
    fi
    echo "$name: $p passed, $f failed, $s skipped"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
done
echo "full log: $log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
