"""Reference cases for elementwise ops, reductions, matmul and linear.
Run from the repository root: python3 tests/reference/ops_core.py"""
import torch
import torch.nn.functional as F

from refcase import RefFile

R = RefFile(seed=1)

# broadcasting arithmetic, odd sizes included
for op, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)]:
    R.case(f"{op}_same", op, [R.randn(3, 5), R.randn(3, 5)], fn)
    R.case(f"{op}_bcast_row", op, [R.randn(4, 7), R.randn(7)], fn)
    R.case(f"{op}_bcast_both", op, [R.randn(2, 1, 5), R.randn(3, 1)], fn)
    R.case(f"{op}_bcast_4d", op, [R.randn(2, 3, 1, 5), R.randn(1, 3, 4, 1)], fn)
R.case("div_bcast", "div", [R.randn(3, 4), R.rand(4, lo=0.5, hi=2.0)], torch.div)
R.case("affine_odd", "affine", [R.randn(3, 7)], lambda x: 1.5 * x - 0.25, args=(1500, -250))

# unary activations (ReLU inputs kept away from its kink)
R.case("relu_odd", "relu", [R.away_from(R.randn(5, 9), [0.0])], torch.relu)
R.case("gelu_odd", "gelu", [R.randn(7, 13, scale=2.0)], F.gelu)
R.case("gelu_3d", "gelu", [R.randn(2, 3, 33)], F.gelu)
R.case("sigmoid_odd", "sigmoid", [R.randn(5, 11, scale=3.0)], torch.sigmoid)
R.case("exp_small", "exp", [R.randn(4, 6)], torch.exp)
R.case("log_pos", "log", [R.rand(4, 6, lo=0.3, hi=3.0)], torch.log)
R.case("sqrt_pos", "sqrt", [R.rand(4, 6, lo=0.3, hi=3.0)], torch.sqrt)
R.case("tanh_odd", "tanh", [R.randn(3, 17)], torch.tanh)

# reductions: (dim, keepdim)
R.case("sum_dim0", "sum", [R.randn(5, 3)], lambda x: x.sum(0), args=(0, 0))
R.case("sum_mid_keep", "sum", [R.randn(2, 7, 3)], lambda x: x.sum(1, keepdim=True), args=(1, 1))
R.case("sum_last_neg", "sum", [R.randn(3, 4, 9)], lambda x: x.sum(-1), args=(-1, 0))
R.case("mean_mid", "mean", [R.randn(2, 5, 3)], lambda x: x.mean(1), args=(1, 0))
R.case("mean_last_keep", "mean", [R.randn(4, 11)], lambda x: x.mean(-1, keepdim=True), args=(-1, 1))
R.case("sum_all_3d", "sum_all", [R.randn(2, 3, 5)], lambda x: x.sum())
R.case("mean_all_odd", "mean_all", [R.randn(7, 3)], lambda x: x.mean())

# matrix products
R.case("matmul_2d", "matmul", [R.randn(5, 7), R.randn(7, 3)], torch.matmul)
R.case("matmul_batched", "matmul", [R.randn(2, 3, 4, 5), R.randn(2, 3, 5, 6)], torch.matmul)
R.case("matmul_shared_b", "matmul", [R.randn(3, 4, 5), R.randn(5, 2)], torch.matmul)
R.case("linear_bias", "linear", [R.randn(6, 5), R.randn(4, 5), R.randn(4)], F.linear)
R.case("linear_nobias_3d", "linear", [R.randn(2, 3, 7), R.randn(5, 7)], F.linear)
R.case("linear_gelu", "linear_gelu", [R.randn(2, 9, 8), R.randn(12, 8, scale=0.3), R.randn(12)],
       lambda x, w, b: F.gelu(F.linear(x, w, b)))

R.save("tests/reference/ops_core.safetensors")
