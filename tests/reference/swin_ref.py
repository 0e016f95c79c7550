"""Reference cases for the Swin backbone (tests/test_swin.c) at sizes the golden
files do not cover: non-square inputs, sizes that need patch and window padding,
stages smaller than the window, odd windows, no qkv bias, non-zero AAVS
adapters, F16 weights, out_features other than the four stages.

HuggingFace transformers' SwinBackbone (4.35.2, the version the official AAVS
code vendors) computes them, with the AAVS adapters swin_adapt_1/3 patched in
as the official modeling_swin.py has them (SWIN:523, SWIN:607), in float64 on
random weights. Each case is a folder tests/reference/swin/<case>/ laid out as
the golden cases are: config.json, weights.safetensors, inputs.safetensors
(pixel_values) and expected.safetensors (backbone.feature_map.<stage> and the
debug.backbone.* token sequences).

Run from the repository root:
  pip install torch safetensors transformers==4.35.2
  python3 tests/reference/swin_ref.py
"""
import json
import math
import os
import warnings

import torch
from torch import nn
from safetensors.torch import save_file

warnings.filterwarnings("ignore")
from transformers import SwinConfig  # noqa: E402
from transformers.models.swin import modeling_swin as ms  # noqa: E402

OUT = os.path.join("tests", "reference", "swin")


def adapter(dim):
    return nn.Sequential(nn.Linear(dim, dim // 4), nn.ReLU(), nn.Linear(dim // 4, dim))


# The official forward of the two modules that carry adapters.
def self_output_forward(self, hidden_states, input_tensor):
    hidden_states = self.dropout(self.dense(hidden_states))
    if hasattr(self, "swin_adapt_1"):
        hidden_states = self.swin_adapt_1(hidden_states) + hidden_states
    return hidden_states


def output_forward(self, hidden_states):
    hidden_states = self.dropout(self.dense(hidden_states))
    if hasattr(self, "swin_adapt_3"):
        hidden_states = self.swin_adapt_3(hidden_states) + hidden_states
    return hidden_states


ms.SwinSelfOutput.forward = self_output_forward
ms.SwinOutput.forward = output_forward


def build(swin_cfg, with_adapters, gen):
    model = ms.SwinBackbone(SwinConfig(**swin_cfg))
    if with_adapters:
        for m in model.modules():
            if isinstance(m, ms.SwinSelfOutput):
                m.swin_adapt_1 = adapter(m.dense.out_features)
            elif isinstance(m, ms.SwinOutput):
                m.swin_adapt_3 = adapter(m.dense.out_features)
    # Every parameter random and of a sensible size: layer norms near 1, weights
    # ~ 1/sqrt(fan_in), a relative position bias that matters, adapters that add
    # a visible amount (the official phase 1 has them zero; the zero case is the
    # golden files').
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=gen, dtype=torch.float64).float()
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * r)
            elif name.endswith("bias") and p.ndim == 1:
                p.copy_(0.1 * r)
            elif "relative_position_bias_table" in name:
                p.copy_(0.5 * r)
            else:
                fan_in = p[0].numel()
                scale = (0.5 if "swin_adapt" in name else 1.0) / math.sqrt(fan_in)
                p.copy_(scale * r)
    return model.eval()


def run(name, swin_cfg, top_config, prefix, frames, height, width, seed, with_adapters=True, store_dtype=None,
        extra_tensors=None, keep_index_buffers=True):
    gen = torch.Generator().manual_seed(seed)
    model = build(swin_cfg, with_adapters, gen)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if store_dtype is not None:
        # the file stores lower precision: the reference computes with exactly what the file holds
        for k, v in state.items():
            if v.is_floating_point():
                state[k] = v.to(store_dtype)
        with torch.no_grad():
            for k, p in model.state_dict().items():
                if p.is_floating_point():
                    p.copy_(state[k].float())
    pixel_values = torch.randn(frames, 3, height, width, generator=gen, dtype=torch.float64).float() * 1.5

    debug = {}

    def keep(label):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            debug["debug.backbone." + label] = out.detach().float().contiguous()
        return hook

    model.embeddings.register_forward_hook(keep("embeddings"))
    for s, stage in enumerate(model.encoder.layers):
        for j, block in enumerate(stage.blocks):
            block.register_forward_hook(keep(f"stage{s + 1}.block{j}"))
        if stage.downsample is not None:
            stage.downsample.register_forward_hook(keep(f"stage{s + 1}.downsample"))

    model = model.double()
    with torch.no_grad():
        maps = model(pixel_values.double()).feature_maps
    expected = dict(debug)
    for stage, fmap in zip(model.out_features, maps):
        expected["backbone.feature_map." + stage] = fmap.float().contiguous()

    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    tensors = {prefix + k: v.contiguous() for k, v in state.items()
               if keep_index_buffers or not k.endswith("relative_position_index")}
    tensors.update(extra_tensors or {})
    save_file(tensors, os.path.join(folder, "weights.safetensors"), metadata={"format": "pt"})
    save_file({"pixel_values": pixel_values.contiguous()}, os.path.join(folder, "inputs.safetensors"))
    save_file(expected, os.path.join(folder, "expected.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(top_config, f, indent=1, sort_keys=True)
        f.write("\n")
    shapes = {k: list(v.shape) for k, v in expected.items() if k.startswith("backbone.")}
    print(name, shapes)


def mask2former_config(swin):
    return {"model_type": "mask2former", "backbone_config": dict(swin, model_type="swin")}


# 1. Non-square, needing window padding at every stage; the last stage (3x4) is
#    smaller than the window; non-zero adapters; HF Mask2Former names.
nonsquare = {
    "embed_dim": 4, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 2, 4], "window_size": 4, "patch_size": 4,
    "image_size": [72, 100], "out_features": ["stage1", "stage2", "stage3", "stage4"],
}
run("nonsquare_pad", nonsquare, mask2former_config(nonsquare), "model.pixel_level_module.encoder.",
    frames=2, height=72, width=100, seed=11)

# 2. A bare Swin (model_type swin at the top, no prefix, no adapters): input not
#    divisible by the patch, odd window 7 (shift 3), stages 3 and 4 smaller than
#    the window, no qkv bias, mlp_ratio 2.5 (int() truncation), layer_norm_eps
#    1e-6, odd depths, out_features with the stem; weights stored as F16 and
#    without the relative_position_index buffers (which the C code recomputes).
bare = {
    "embed_dim": 6, "depths": [1, 2, 3, 1], "num_heads": [1, 2, 3, 4], "window_size": 7, "patch_size": 2,
    "image_size": [45, 37], "qkv_bias": False, "mlp_ratio": 2.5, "layer_norm_eps": 1e-6,
    "out_features": ["stem", "stage2", "stage4"],
}
run("bare_small_stages", bare, dict(bare, model_type="swin"), "", frames=2, height=45, width=37, seed=12,
    with_adapters=False, store_dtype=torch.float16, keep_index_buffers=False)

# 3. An AAVS checkpoint (wrapper prefix, other tensors beside the backbone):
#    three stages, odd window 5 (shift 2), one 33x61 frame, out_indices instead
#    of out_features, relu MLP.
three = {
    "embed_dim": 4, "depths": [2, 2, 2], "num_heads": [1, 1, 2], "window_size": 5, "patch_size": 4,
    "image_size": [33, 61], "out_indices": [1, 2, 3], "hidden_act": "relu",
}
extra = {"audio_proj.0.weight": torch.ones(3, 2), "model.model.pixel_level_module.decoder.x.weight": torch.ones(2)}
run("aavs_three_stages", three, mask2former_config(three), "model.model.pixel_level_module.encoder.",
    frames=1, height=33, width=61, seed=13, extra_tensors=extra)
