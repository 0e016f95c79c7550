"""bench_vggish_torch.py - torchvggish's front end (vggish_input, numpy) and
its VGG at the real size (random weights) on the audio bench_vggish uses,
same threads. Prints the lines bench_vggish prints."""
import sys
import time

import numpy as np
import torch
from torchvggish import vggish_input
from torchvggish.torchvggish import VGG, make_layers

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
torch.set_num_threads(threads)
torch.manual_seed(3)
SECONDS = 60
t = np.arange(SECONDS * 16000) / 16000.0
wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t) + 0.1 * np.sin(2 * np.pi * (200 + 50 * t) * t)
# towhee's path: no ReLU after the last layer
net = VGG(make_layers(), postprocess=False)
net.embeddings = torch.nn.Sequential(*list(net.embeddings.children())[:-1])
net.eval()
print(f"{'# vggish, 60 s of audio':<32} {'s':>10} {'audio s/s':>12}")
with torch.no_grad():
    t0 = time.perf_counter()
    examples = vggish_input.waveform_to_examples(wave, 16000, return_tensor=True).float()
    t1 = time.perf_counter()
    net(examples)
    t2 = time.perf_counter()
for name, sec in (("front_end", t1 - t0), ("network", t2 - t1), ("total", t2 - t0)):
    print(f"vggish.{name:<25} {sec:10.3f} {SECONDS / sec:12.1f}", flush=True)
