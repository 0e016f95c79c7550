"""Reference cases for conv2d, bilinear interpolation and grid sampling.
Run from the repository root: python3 tests/reference/ops_spatial.py"""
import torch
import torch.nn.functional as F

from refcase import RefFile

R = RefFile(seed=3)


# conv2d: inputs x, w (, b); args stride_h, stride_w, pad_h, pad_w
def conv(name, x, w, b, sh, sw, ph, pw):
    inputs = [x, w] + ([b] if b is not None else [])
    R.case(name, "conv2d", inputs,
           lambda x, w, b=None: F.conv2d(x, w, b, stride=(sh, sw), padding=(ph, pw)),
           args=(sh, sw, ph, pw))


conv("conv_3x3_s1_p1", R.randn(2, 3, 7, 6), R.randn(4, 3, 3, 3, scale=0.3), R.randn(4), 1, 1, 1, 1)
conv("conv_1x1", R.randn(2, 5, 4, 3), R.randn(6, 5, 1, 1, scale=0.5), R.randn(6), 1, 1, 0, 0)
conv("conv_1x1_stride2", R.randn(1, 3, 5, 7), R.randn(2, 3, 1, 1), R.randn(2), 2, 2, 0, 0)
# Swin patch embedding: 4x4 kernel, stride 4
conv("conv_patch4", R.randn(1, 3, 8, 12), R.randn(5, 3, 4, 4, scale=0.3), R.randn(5), 4, 4, 0, 0)
conv("conv_3x3_s2_p1_odd", R.randn(2, 3, 9, 7), R.randn(4, 3, 3, 3, scale=0.3), R.randn(4), 2, 2, 1, 1)
# stride 3 leaves a remainder (output size rounds down)
conv("conv_3x3_s3_trunc", R.randn(1, 2, 10, 8), R.randn(3, 2, 3, 3, scale=0.3), R.randn(3), 3, 3, 1, 1)
# kh != kw, different strides and paddings per axis
conv("conv_rect", R.randn(1, 2, 6, 9), R.randn(3, 2, 3, 5, scale=0.3), R.randn(3), 1, 2, 1, 2)
conv("conv_nobias", R.randn(2, 4, 5, 5), R.randn(3, 4, 3, 3, scale=0.3), None, 1, 1, 1, 1)


# interpolate: args oh, ow; works on the last two dims of any leading shape
def interp(name, x, oh, ow):
    def fn(x):
        lead = x.shape[:-2]
        y = F.interpolate(x.reshape(1, -1, *x.shape[-2:]), size=(oh, ow), mode="bilinear",
                          align_corners=False)
        return y.reshape(*lead, oh, ow)
    R.case(name, "interpolate", [x], fn, args=(oh, ow))


interp("interp_up", R.randn(1, 2, 5, 6), 11, 13)
interp("interp_down_13_5", R.randn(1, 3, 13, 11), 5, 4)
interp("interp_up_7_24", R.randn(2, 1, 7, 6), 24, 17)
interp("interp_mixed", R.randn(1, 2, 4, 15), 9, 6)
interp("interp_3d", R.randn(3, 6, 5), 8, 3)
interp("interp_same", R.randn(1, 1, 4, 5), 4, 5)
interp("interp_to_1", R.randn(2, 3, 4), 1, 1)


# grid_sample: grid [n, ho, wo, 2] of (x, y); the fractional part of each pixel
# position is kept away from 0 (pixel centres, where the grid gradient jumps, as
# it does where a corner leaves the image)
def grid(n, ho, wo, h, w, lo, hi):
    def coord(size):
        pos = R.rand(n, ho, wo, lo=lo * size, hi=hi * size)  # pixel position
        frac = pos - pos.floor()
        frac = frac.clamp(0.1, 0.9)
        pos = pos.floor() + frac
        return (2 * pos + 1) / size - 1
    return torch.stack([coord(w), coord(h)], dim=-1).float()


R.case("grid_sample_inside", "grid_sample", [R.randn(1, 2, 5, 6), grid(1, 4, 3, 5, 6, 0.0, 0.95)],
       lambda x, g: F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=False))
R.case("grid_sample_outside", "grid_sample", [R.randn(2, 3, 4, 7), grid(2, 5, 6, 4, 7, -0.4, 1.3)],
       lambda x, g: F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=False))
R.case("grid_sample_x_only", "grid_sample", [R.randn(1, 1, 3, 3), grid(1, 2, 5, 3, 3, -0.2, 1.1)],
       lambda x, g: F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=False),
       grads=[True, False])

R.save("tests/reference/ops_spatial.safetensors")
