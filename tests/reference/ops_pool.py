"""Reference cases for 2-D max pooling.
Run from the repository root: python3 tests/reference/ops_pool.py

Inputs are random permutations of well-separated values, so no window holds
a tie and a finite-difference step (1e-3) cannot change a window's winner."""
import torch
import torch.nn.functional as F

from refcase import RefFile

R = RefFile(seed=11)


def distinct(*shape):
    """Values k * 0.05 - offset for a random permutation k: every pair differs by
    at least 0.05, far more than the finite-difference step."""
    n = 1
    for s in shape:
        n *= s
    perm = torch.randperm(n, generator=R.gen).float()
    return (perm * 0.05 - n * 0.025).reshape(*shape).float()


# maxpool2d: args kh, kw, sh, sw, ph, pw
def pool(name, x, kh, kw, sh, sw, ph, pw):
    R.case(name, "maxpool2d", [x],
           lambda x: F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw)),
           args=(kh, kw, sh, sw, ph, pw))


# VGGish's pooling: 2x2, stride 2 (a 96x64 example halves four times)
pool("maxpool_2x2", distinct(2, 3, 6, 8), 2, 2, 2, 2, 0, 0)
# odd sizes: the last row and column fall outside every window (floor mode)
pool("maxpool_2x2_odd", distinct(1, 2, 7, 5), 2, 2, 2, 2, 0, 0)
# overlapping windows (stride < kernel): one pixel can win several windows
pool("maxpool_3x3_s1", distinct(1, 2, 5, 6), 3, 3, 1, 1, 0, 0)
pool("maxpool_3x3_s2_p1", distinct(2, 2, 7, 7), 3, 3, 2, 2, 1, 1)
# rectangular kernel and strides, padding on one axis, 3-D input
pool("maxpool_rect", distinct(3, 6, 9), 2, 3, 1, 2, 1, 0)
# a window at the padded corner holds a single real pixel
pool("maxpool_pad_corner", distinct(1, 1, 3, 3), 2, 2, 2, 2, 1, 1)

R.save("tests/reference/ops_pool.safetensors")
