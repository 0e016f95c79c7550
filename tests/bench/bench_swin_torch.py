"""bench_swin_torch.py - HuggingFace SwinBackbone with Mask2Former's Swin-B
config (random weights), 384x384, batch 1 and 5, no grad, on the given threads.
Prints the lines bench_swin prints (peak memory: the process's max RSS growth)."""
import resource
import sys
import time

import torch
from transformers import SwinConfig
from transformers.models.swin.modeling_swin import SwinBackbone

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
torch.set_num_threads(threads)
torch.manual_seed(1)
cfg = SwinConfig(image_size=384, patch_size=4, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                 window_size=12, drop_path_rate=0.0, out_features=["stage1", "stage2", "stage3", "stage4"])
model = SwinBackbone(cfg).eval()
print(f"{'# swin-b 384x384':<32} {'s/batch':>10} {'frames/s':>10} {'peak MiB':>12}")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with torch.no_grad():
    for batch in (1, 5):
        x = torch.randn(batch, 3, 384, 384)
        model(x)
        runs = 3 if batch == 1 else 1
        t0 = time.perf_counter()
        for _ in range(runs):
            model(x)
        sec = (time.perf_counter() - t0) / runs
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
        print(f"swin_b.batch{batch:<26} {sec:10.3f} {batch / sec:10.2f} {peak:12.1f}", flush=True)
