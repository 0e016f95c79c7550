"""Reference cases for softmax, layer norm, group norm, attention and cosine similarity.
Run from the repository root: python3 tests/reference/ops_nn.py

Float parameters travel as integer args: eps in units of 1e-9, the attention
scale in units of 1e-6 (0 = 1/sqrt(d)). The attention and cosine references
are written out in float64 and checked here against torch's own modules, so a
change of semantics in a torch release shows up when this script runs."""
import math

import torch
import torch.nn.functional as F

from refcase import RefFile

R = RefFile(seed=2)
NONE, BLOCK, ADD = 0, 1, 2  # attn_mask_kind_t


def nano(eps):
    return int(round(eps * 1e9))


# ---- softmax: (dim) ----
R.case("softmax_last", "softmax", [R.randn(3, 7)], lambda x: torch.softmax(x, -1), args=(-1,))
R.case("softmax_dim0", "softmax", [R.randn(5, 3)], lambda x: torch.softmax(x, 0), args=(0,))
R.case("softmax_mid", "softmax", [R.randn(2, 9, 3)], lambda x: torch.softmax(x, 1), args=(1,))
R.case("softmax_4d_wide", "softmax", [R.randn(2, 3, 4, 5, scale=3.0)], lambda x: torch.softmax(x, 2), args=(2,))
R.case("softmax_len1", "softmax", [R.randn(4, 1)], lambda x: torch.softmax(x, 1), args=(1,))
R.case("softmax_large", "softmax", [R.randn(3, 11) + 40.0], lambda x: torch.softmax(x, -1), args=(-1,))

# ---- layer norm over the last dim: (eps, has_w, has_b) ----
def ln(eps):
    def f(x, *wb):
        w = wb[0] if len(wb) > 0 else None
        b = wb[1] if len(wb) > 1 else None
        return F.layer_norm(x, x.shape[-1:], w, b, eps)
    return f


R.case("ln_affine", "layer_norm", [R.randn(4, 7), R.randn(7), R.randn(7)], ln(1e-5), args=(nano(1e-5), 1, 1))
R.case("ln_noaffine_3d", "layer_norm", [R.randn(2, 3, 9)], ln(1e-6), args=(nano(1e-6), 0, 0))
R.case("ln_weight_only", "layer_norm", [R.randn(5, 16), R.rand(16, lo=0.5, hi=1.5)], ln(1e-5),
       args=(nano(1e-5), 1, 0))
# a large mean over a small spread: the two-pass variance keeps this exact
R.case("ln_offset", "layer_norm", [R.randn(3, 33, scale=0.5) + 5.0, R.randn(33), R.randn(33)], ln(1e-5),
       args=(nano(1e-5), 1, 1))
R.case("ln_dim1", "layer_norm", [R.randn(3, 1), R.randn(1), R.randn(1)], ln(1e-5), args=(nano(1e-5), 1, 1))


# ---- group norm: (groups, eps) ----
def gn(groups, eps):
    return lambda x, *wb: F.group_norm(x, groups, *wb, eps=eps)


R.case("gn_affine", "group_norm", [R.randn(2, 6, 5), R.randn(6), R.randn(6)], gn(3, 1e-5), args=(3, nano(1e-5)))
R.case("gn_4d", "group_norm", [R.randn(2, 8, 3, 5), R.randn(8), R.randn(8)], gn(4, 1e-5), args=(4, nano(1e-5)))
R.case("gn_noaffine", "group_norm", [R.randn(3, 4, 7)], gn(2, 1e-5), args=(2, nano(1e-5)))
R.case("gn_one_group", "group_norm", [R.randn(2, 5, 3, 3), R.randn(5), R.randn(5)], gn(1, 1e-6),
       args=(1, nano(1e-6)))
R.case("gn_instance", "group_norm", [R.randn(2, 6, 4) * 2.0 + 1.0, R.randn(6), R.randn(6)], gn(6, 1e-5),
       args=(6, nano(1e-5)))
R.case("gn_no_spatial", "group_norm", [R.randn(4, 6), R.randn(6), R.randn(6)], gn(2, 1e-5), args=(2, nano(1e-5)))


# ---- attention: (mask kind, scale in 1e-6) ----
def attn_ref(kind, scale_arg):
    """softmax(q k^T * scale + mask) v in float64; a BLOCK mask is nonzero where a
    query may not attend (nn.MultiheadAttention's bool attn_mask)."""
    def f(q, k, v, mask=None):
        scale = scale_arg * 1e-6 if scale_arg > 0 else 1.0 / math.sqrt(q.shape[-1])
        s = q @ k.transpose(-1, -2) * scale
        if kind == BLOCK:
            s = s.masked_fill(mask.bool(), float("-inf"))
        elif kind == ADD:
            s = s + mask
        return torch.softmax(s, -1) @ v
    return f


def sdpa(kind, scale_arg, q, k, v, mask=None):
    """The same through F.scaled_dot_product_attention (whose bool mask is True = may attend)."""
    scale = scale_arg * 1e-6 if scale_arg > 0 else None
    m = None
    if kind == BLOCK:
        m = ~mask.bool()
    elif kind == ADD:
        m = mask.double()
    return F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=m, scale=scale)


def block_mask(*shape, dtype=torch.uint8, p=0.4):
    """A random mask with about p of the keys blocked, never a whole row."""
    m = torch.rand(*shape, generator=R.gen) < p
    keep = torch.randint(0, shape[-1], shape[:-1], generator=R.gen)
    m.scatter_(-1, keep.unsqueeze(-1), False)
    return m.to(dtype)


def attn_case(name, q, k, v, kind=NONE, mask=None, scale_arg=0, kind_name="attention"):
    inputs = [q, k, v] + ([mask] if mask is not None else [])
    # an additive mask takes a gradient (Swin's relative position bias is one)
    grads = [True, True, True] + ([kind == ADD] if mask is not None else [])
    want = attn_ref(kind, scale_arg)(*[x.double() if x.is_floating_point() else x for x in inputs])
    got = sdpa(kind, scale_arg, q, k, v, mask)
    assert torch.allclose(want, got, atol=1e-10), name
    R.case(name, kind_name, inputs, attn_ref(kind, scale_arg), args=(kind, scale_arg), grads=grads)


attn_case("attn_nomask", R.randn(2, 3, 5, 4), R.randn(2, 3, 7, 4), R.randn(2, 3, 7, 6))
attn_case("attn_nomask_odd_scale", R.randn(1, 2, 3, 5), R.randn(1, 2, 9, 5), R.randn(1, 2, 9, 3), scale_arg=300000)
attn_case("attn_one_query", R.randn(2, 1, 1, 6), R.randn(2, 1, 5, 6), R.randn(2, 1, 5, 2))
attn_case("attn_block_b1", R.randn(2, 3, 5, 4), R.randn(2, 3, 6, 4), R.randn(2, 3, 6, 3), BLOCK,
          block_mask(2, 1, 5, 6))
attn_case("attn_block_11_bool", R.randn(2, 2, 4, 3), R.randn(2, 2, 7, 3), R.randn(2, 2, 7, 5), BLOCK,
          block_mask(1, 1, 4, 7, dtype=torch.bool))
attn_case("attn_block_full", R.randn(2, 2, 3, 5), R.randn(2, 2, 4, 5), R.randn(2, 2, 4, 4), BLOCK,
          block_mask(2, 2, 3, 4))
attn_case("attn_block_1h", R.randn(3, 2, 3, 4), R.randn(3, 2, 5, 4), R.randn(3, 2, 5, 4), BLOCK,
          block_mask(1, 2, 3, 5, dtype=torch.bool), scale_arg=700000)
attn_case("attn_add_full", R.randn(2, 3, 4, 5), R.randn(2, 3, 6, 5), R.randn(2, 3, 6, 3), ADD,
          R.randn(2, 3, 4, 6))
attn_case("attn_add_bcast", R.randn(2, 2, 5, 3), R.randn(2, 2, 3, 3), R.randn(2, 2, 3, 7), ADD,
          R.randn(1, 2, 5, 3, scale=2.0))

# Swin's window attention: the relative position bias [1, h, l, l] plus the
# shifted-window mask [windows, 1, l, l] arrive as one additive mask [w, h, l, l]
attn_case("attn_add_swin_bias", R.randn(4, 2, 9, 4), R.randn(4, 2, 9, 4), R.randn(4, 2, 9, 4), ADD,
          R.randn(1, 2, 9, 9))


# nn.MultiheadAttention(embed_dim=32, num_heads=8): 8 heads of dim 4 and a
# 2-D bool attn_mask [L, S] (broadcast over batch and heads). With identity
# projections the module is exactly the attention of its heads.
def mha_check(q, k, v, mask):
    b, h, lq, d = q.shape
    e = h * d
    mha = torch.nn.MultiheadAttention(e, h, bias=False, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([torch.eye(e)] * 3).double())
        mha.out_proj.weight.copy_(torch.eye(e).double())
    fold = lambda t: t.double().permute(0, 2, 1, 3).reshape(b, t.shape[2], e)
    got, _ = mha(fold(q), fold(k), fold(v), attn_mask=mask[0, 0].bool(), need_weights=False)
    want = attn_ref(BLOCK, 0)(q.double(), k.double(), v.double(), mask)
    assert torch.allclose(fold(want), got, atol=1e-10), "MultiheadAttention differs"


mq, mk, mv = R.randn(2, 8, 6, 4), R.randn(2, 8, 5, 4), R.randn(2, 8, 5, 4)
mmask = block_mask(1, 1, 6, 5, dtype=torch.bool)
mha_check(mq, mk, mv, mmask)
attn_case("attn_mha_8x4", mq, mk, mv, BLOCK, mmask)

# post-norm step without projections: layer_norm(q + attention(q, k, v)) over d;
# args (mask kind, scale, eps)
def attn_res_ln(q, k, v, w, b, mask):
    return F.layer_norm(q + attn_ref(BLOCK, 0)(q, k, v, mask), q.shape[-1:], w, b, 1e-5)


R.case("attn_residual_ln", "attention_residual_ln",
       [R.randn(2, 2, 5, 8), R.randn(2, 2, 7, 8), R.randn(2, 2, 7, 8), R.randn(8), R.randn(8),
        block_mask(2, 1, 5, 7)],
       attn_res_ln, args=(BLOCK, 0, nano(1e-5)), grads=[True] * 5 + [False])


# ---- cosine similarity along the last dim: (eps) ----
# torch 1.13's formula (ATen Distance.cpp), which the AAVS code ran with:
#   sum(a*b) / sqrt(max(|a|^2 |b|^2, eps^2))
# torch >= 2.0 computes (a / max(|a|, eps)) . (b / max(|b|, eps)) instead; the
# two agree while both norms are well above eps, as every input here is.
def cos_113(eps):
    def f(a, b):
        a, b = torch.broadcast_tensors(a, b)
        w12 = (a * b).sum(-1)
        n12 = ((a * a).sum(-1) * (b * b).sum(-1)).clamp_min(eps * eps).sqrt()
        return w12 / n12
    return f


def cos_case(name, a, b, eps=1e-8):
    assert (a.norm(dim=-1) > 1e-2).all() and (b.norm(dim=-1) > 1e-2).all(), name
    want = cos_113(eps)(a.double(), b.double())
    assert torch.allclose(want, F.cosine_similarity(a.double(), b.double(), dim=-1, eps=eps), atol=1e-12), name
    R.case(name, "cosine_similarity", [a, b], cos_113(eps), args=(nano(eps),))


cos_case("cos_aavs", R.randn(5, 1, 32), R.randn(1, 7, 32))  # AAVS: [Q, 1, D] vs [1, F, D] -> [Q, F]
cos_case("cos_same", R.randn(4, 9), R.randn(4, 9))
cos_case("cos_bcast_3d", R.randn(2, 1, 5, 6), R.randn(3, 1, 6))
cos_case("cos_vector", R.randn(7), R.randn(7))
cos_case("cos_row_vs_many", R.randn(6, 8), R.randn(8), eps=1e-6)

R.save("tests/reference/ops_nn.safetensors")
