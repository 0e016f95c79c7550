"""bench_ops_torch.py - PyTorch CPU on the shapes of tests/bench/bench_shapes.h,
same thread count, f32, forward, no grad. Prints the lines bench_ops prints."""
import re
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
torch.set_num_threads(threads)
torch.manual_seed(1)
src = open(__file__.replace("bench_ops_torch.py", "bench_shapes.h")).read()


def table(name):
    body = src[src.index(name):]
    body = body[:body.index("};")]
    return [[int(v) if v.lstrip("-").isdigit() else v.strip('"') for v in re.split(r",\s*", row)]
            for row in re.findall(r"\{(\"[^}]*)\}", body)]


def time_ms(fn):
    fn()
    calls, start = 0, time.perf_counter()
    t = start
    while calls < 3 or t - start < 0.5:
        fn()
        calls += 1
        t = time.perf_counter()
    return 1e3 * (t - start) / calls


def report(name, ms, flops):
    print(f"{name:<32} {ms:10.3f} {flops / (ms * 1e-3) / 1e9:10.1f}", flush=True)


with torch.no_grad():
    for name, m, n, k in table("bench_gemms[]"):
        a, b = torch.randn(m, k), torch.randn(k, n)
        report(name, time_ms(lambda: a @ b), 2.0 * m * n * k)
    for name, m, n, k in table("bench_linear_gelu[]"):
        x, w, bias = torch.randn(m, k), torch.randn(n, k) * 0.05, torch.randn(n) * 0.1
        report(name, time_ms(lambda: F.gelu(F.linear(x, w, bias))), 2.0 * m * n * k)
    for name, b, h, lq, lk, d, mask in table("bench_attention[]"):
        q, kk, v = torch.randn(b, h, lq, d), torch.randn(b, h, lk, d), torch.randn(b, h, lk, d)
        if mask == 1:
            am = torch.zeros(b, 1, lq, lk)
            am.view(-1)[::7] = -100.0
        elif mask == 2:
            am = (torch.rand(b, h, lq, lk) < 0.5)
            am[..., 0] = False
            am = ~am  # SDPA's bool mask is True = may attend
        else:
            am = None
        report(name, time_ms(lambda: F.scaled_dot_product_attention(q, kk, v, attn_mask=am)),
               4.0 * b * h * lq * lk * d)
