#!/bin/sh
# run.sh BUILD - runs every benchmark build/bench/bench_X. Where
# tests/bench/bench_X_torch.py exists and PyTorch is installed, it runs the same
# work in PyTorch on the same number of threads, in the same run, and the two
# are printed side by side (rows joined on their first column).
set -u
build=${1:-build}
threads=${STEPSTONE_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads
out=$build/bench
mkdir -p "$out"
have_torch=0
python3 -c "import torch" 2>/dev/null && have_torch=1
echo "stepstone benchmarks: $threads threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
[ $have_torch = 1 ] || echo "PyTorch is not installed: stepstone's numbers only (pip install torch transformers for the side-by-side)"
status=0
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    name=$(basename "$b")
    echo
    echo "== $name"
    "$b" > "$out/$name.txt" || { echo "$name failed"; status=1; continue; }
    script=tests/bench/${name}_torch.py
    if [ $have_torch = 1 ] && [ -f "$script" ] && python3 "$script" "$threads" > "$out/$name.torch.txt" 2>"$out/$name.torch.err"; then
        echo "stepstone | PyTorch $(python3 -c 'import torch; print(torch.__version__)') (same work, same threads) | PyTorch time / stepstone time"
        awk 'NR == FNR { if ($1 !~ /^#/) torch[$1] = $0; next }
             /^#/ { print $0 "   | PyTorch, same columns   | speedup"; next }
             { t = torch[$1]; split(t, f, " "); printf "%s   | %s   | %.2fx\n", $0, substr(t, length($1) + 2), f[2] / $2 }' \
            "$out/$name.torch.txt" "$out/$name.txt"
    else
        [ -f "$script" ] && [ $have_torch = 1 ] && echo "(PyTorch side failed: $out/$name.torch.err)"
        cat "$out/$name.txt"
    fi
done
exit $status
