"""Reference cases for reshape, permute, slice, concat, roll and embedding.
Run from the repository root: python3 tests/reference/ops_layout.py"""
import torch

from refcase import RefFile

R = RefFile(seed=4)

# reshape: args = the new shape (one -1 allowed)
R.case("reshape_infer", "reshape", [R.randn(2, 3, 4)], lambda x: x.reshape(4, -1), args=(4, -1))

# permute: args = perm
for name, shape, perm in [
    ("permute_2d", (5, 3), (1, 0)),
    ("permute_nchw_nhwc", (2, 3, 4, 5), (0, 2, 3, 1)),
    ("permute_neg", (3, 4, 5), (-1, 0, 1)),
    ("permute_5d", (2, 3, 2, 4, 3), (4, 2, 0, 3, 1)),
    # Swin window partition: [b, h/ws, ws, w/ws, ws, c] -> [b, h/ws, w/ws, ws, ws, c]
    ("permute_window_6d", (2, 2, 3, 2, 3, 5), (0, 1, 3, 2, 4, 5)),
]:
    R.case(name, "permute", [R.randn(*shape)], lambda x, p=perm: x.permute(*p), args=perm)

# slice: args dim, start, end (end exclusive; Python rules for negatives and overruns)
R.case("slice_mid", "slice", [R.randn(3, 7, 4)], lambda x: x[:, 2:5], args=(1, 2, 5))
R.case("slice_neg", "slice", [R.randn(4, 6)], lambda x: x[:, -4:-1], args=(-1, -4, -1))
R.case("slice_clamp", "slice", [R.randn(5, 3, 2)], lambda x: x[1:100], args=(0, 1, 100))

# concat: inputs are the pieces; args dim
R.case("concat3_mid", "concat", [R.randn(2, 3, 4), R.randn(2, 1, 4), R.randn(2, 5, 4)],
       lambda a, b, c: torch.cat([a, b, c], 1), args=(1,))
R.case("concat_last", "concat", [R.randn(3, 2), R.randn(3, 5)], lambda a, b: torch.cat([a, b], -1), args=(-1,))
R.case("concat_first", "concat", [R.randn(1, 3), R.randn(2, 3)], lambda a, b: torch.cat([a, b], 0), args=(0,))
R.case("concat_one_const", "concat", [R.randn(2, 2, 3), R.randn(2, 4, 3)], lambda a, b: torch.cat([a, b], 1),
       args=(1,), grads=[False, True])

# roll: args n, shifts..., dims...
def roll(name, shape, shifts, dims):
    R.case(name, "roll", [R.randn(*shape)], lambda x: torch.roll(x, shifts, dims),
           args=(len(shifts), *shifts, *dims))


roll("roll_swin_neg", (2, 5, 6, 3), (-2, -3), (1, 2))
roll("roll_large", (4, 7), (-13, 9), (0, 1))
roll("roll_same_dim_twice", (3, 5), (2, 4), (1, -1))
R.case("roll_flat", "roll_flat", [R.randn(3, 4)], lambda x: torch.roll(x, 5), args=(5,))

# embedding: weight [v, d], indices I64 of any shape; repeated indices add up
R.case("embedding_repeat", "embedding", [R.randn(7, 5), torch.tensor([[1, 3, 1], [6, 0, 1]])],
       lambda w, i: torch.nn.functional.embedding(i, w))
R.case("embedding_1d", "embedding", [R.randn(10, 3), torch.tensor([4, 4, 9, 0])],
       lambda w, i: torch.nn.functional.embedding(i, w))


# Swin (shifted) window partition: x [b, h, w, c] -> roll by -shift on h and w ->
# [b, h/ws, ws, w/ws, ws, c] -> [b, h/ws, w/ws, ws, ws, c] -> [-1, ws, ws, c]; args ws, shift
def partition(x, ws, shift):
    b, h, w, c = x.shape
    if shift:
        x = torch.roll(x, (-shift, -shift), (1, 2))
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, c)


R.case("window_partition", "window_partition", [R.randn(2, 6, 9, 4)], lambda x: partition(x, 3, 0), args=(3, 0))
R.case("window_partition_shifted", "window_partition", [R.randn(1, 6, 6, 3)], lambda x: partition(x, 3, 1),
       args=(3, 1))

R.save("tests/reference/ops_layout.safetensors")
