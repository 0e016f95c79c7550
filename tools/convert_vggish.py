#!/usr/bin/env python3
"""convert_vggish.py - torchvggish's .pth weights to a .safetensors file for
common/vggish.h (C reads no pickles).

  python3 tools/convert_vggish.py vggish-10086976.pth [--pca vggish_pca_params-970ea276.pth] -o vggish.safetensors

The first file is torchvggish's network state dict (features.{0,3,6,8,11,13}.weight/bias,
embeddings.{0,2,4}.weight/bias), written under the same names as float32. The
optional PCA file (harritaylor/torchvggish release v0.1) holds "pca_eigen_vectors"
[128, 128] and "pca_means" [128] as numpy arrays; they are written as
pproc.pca_eigen_vectors [128, 128] and pproc.pca_means [128, 1], float32, the
names and shapes of torchvggish's Postprocessor (the C code needs them only for
its PCA + quantization option; towhee's path, the one AAVS uses, has no PCA).
A checkpoint that holds the VGGish under a prefix ("vggish.", "module.") or that
already carries pproc.* is accepted too; the prefix is dropped.

Every expected tensor must be there with a consistent shape, or the converter
stops naming it. Needs torch, numpy and safetensors.

The .pth files are pickles: torch.load(weights_only=True) reads them without
running code; the PCA file stores numpy arrays, which weights_only loading
accepts once numpy's array reconstruction is allow-listed (done below). Pass
--unsafe-pickle only for a file you trust that still fails.
"""
import argparse
import sys

import numpy as np
import torch
from safetensors.torch import save_file

CONVS = [0, 3, 6, 8, 11, 13]
LINEARS = [0, 2, 4]


def load_pickle(path, unsafe):
    if unsafe:
        return torch.load(path, map_location="cpu", weights_only=False)
    allowed = [np.ndarray, np.dtype, np.dtypes.Float32DType, np.dtypes.Float64DType]
    reconstruct = getattr(np, "_core", np.core).multiarray._reconstruct
    with torch.serialization.safe_globals([reconstruct] + allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def as_tensor(value, name, path):
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32).contiguous()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    sys.exit(f"{path}: '{name}' is a {type(value).__name__}, not a tensor or array")


def strip_prefix(state, path):
    """The state dict with any prefix before features.0.weight dropped."""
    keys = [k for k in state if k.endswith("features.0.weight")]
    if not keys:
        sys.exit(f"{path}: no 'features.0.weight': not a torchvggish state dict "
                 f"(found {', '.join(list(state)[:5])}...)")
    prefix = keys[0][: -len("features.0.weight")]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def convert(args):
    state = load_pickle(args.weights, args.unsafe_pickle)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = strip_prefix(state, args.weights)
    out = {}
    channels = 1
    for i in CONVS:
        w = need(state, f"features.{i}.weight", args.weights)
        if w.ndim != 4 or w.shape[1] != channels or tuple(w.shape[2:]) != (3, 3):
            sys.exit(f"{args.weights}: tensor 'features.{i}.weight': shape {list(w.shape)}, "
                     f"expected [out, {channels}, 3, 3]")
        out[f"features.{i}.weight"] = w
        channels = w.shape[0]
        out[f"features.{i}.bias"] = bias(state, f"features.{i}.bias", channels, args.weights)
    width = channels * 6 * 4
    for i in LINEARS:
        name = f"embeddings.{i}.weight"
        w = need(state, name, args.weights)
        if w.ndim != 2 or w.shape[1] != width:
            sys.exit(f"{args.weights}: tensor '{name}': shape {list(w.shape)}, expected [out, {width}]")
        out[name] = w
        width = w.shape[0]
        out[f"embeddings.{i}.bias"] = bias(state, f"embeddings.{i}.bias", width, args.weights)

    pca = {}
    if args.pca:
        raw = load_pickle(args.pca, args.unsafe_pickle)
        pca = {"pproc.pca_eigen_vectors": raw.get("pca_eigen_vectors"), "pproc.pca_means": raw.get("pca_means")}
        source = args.pca
    elif "pproc.pca_eigen_vectors" in state:
        pca = {k: state.get(k) for k in ["pproc.pca_eigen_vectors", "pproc.pca_means"]}
        source = args.weights
    if pca:
        for k, v in pca.items():
            if v is None:
                sys.exit(f"{source}: tensor '{k.split('.')[-1]}' is missing")
        vectors = as_tensor(pca["pproc.pca_eigen_vectors"], "pca_eigen_vectors", source)
        means = as_tensor(pca["pproc.pca_means"], "pca_means", source).reshape(-1, 1)
        if tuple(vectors.shape) != (width, width) or means.shape[0] != width:
            sys.exit(f"{source}: PCA shapes {list(vectors.shape)} and {list(means.shape)}, "
                     f"expected [{width}, {width}] and [{width}, 1]")
        out["pproc.pca_eigen_vectors"] = vectors
        out["pproc.pca_means"] = means.contiguous()

    save_file(out, args.output, metadata={"format": "pt", "source": "torchvggish"})
    sizes = [out[f"features.{i}.weight"].shape[0] for i in CONVS] + [out[f"embeddings.{i}.weight"].shape[0]
                                                                      for i in LINEARS]
    print(f"wrote {args.output}: {len(out)} tensors, widths {sizes}{', with PCA' if pca else ''}")


def need(state, name, path):
    if name not in state:
        sys.exit(f"{path}: tensor '{name}' is missing")
    return as_tensor(state[name], name, path)


def bias(state, name, size, path):
    b = need(state, name, path)
    if tuple(b.shape) != (size,):
        sys.exit(f"{path}: tensor '{name}': shape {list(b.shape)}, expected [{size}]")
    return b


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="torchvggish network weights (.pth), e.g. vggish-10086976.pth")
    ap.add_argument("--pca", help="torchvggish PCA params (.pth), e.g. vggish_pca_params-970ea276.pth")
    ap.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    ap.add_argument("--unsafe-pickle", action="store_true", help="load with weights_only=False (trusted files only)")
    convert(ap.parse_args())
