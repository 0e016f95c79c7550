#!/bin/sh
# run.sh BUILD - runs every benchmark and, when PyTorch is installed, the same
# shapes in PyTorch on the same number of threads, and prints them side by side.
set -u
build=${1:-build}
threads=${STEPSTONE_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
out=$build/bench
mkdir -p "$out"
echo "stepstone benchmarks: $threads threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$build"/bench/bench_ops > "$out/ops.txt" || exit 1
if python3 -c "import torch" 2>/dev/null; then
    python3 tests/bench/bench_torch.py "$threads" > "$out/ops_torch.txt" || exit 1
    echo "PyTorch $(python3 -c 'import torch; print(torch.__version__)') on the same shapes and threads:"
    printf '%-32s %10s %10s %10s %10s %8s\n' "# shape" "ms" "GFLOP/s" "torch ms" "torch GF/s" "speedup"
    grep -v '^#' "$out/ops.txt" | while read -r name ms gf; do
        line=$(grep "^$name " "$out/ops_torch.txt")
        tms=$(echo "$line" | awk '{print $2}'); tgf=$(echo "$line" | awk '{print $3}')
        printf '%-32s %10s %10s %10s %10s %7.2fx\n' "$name" "$ms" "$gf" "$tms" "$tgf" "$(awk -v a="$tms" -v b="$ms" 'BEGIN { print a / b }')"
    done
else
    echo "PyTorch is not installed: no side-by-side numbers (pip install torch to get them)"
    cat "$out/ops.txt"
fi
for b in "$build"/bench/bench_*; do
    case "$b" in */bench_ops) continue ;; esac
    [ -x "$b" ] && "$b"
done
exit 0
