"""refcase.py - writes op reference cases for tests/test_ops.c.

A case stores its inputs (<name>.in<k>), integer args (<name>.args), the
output PyTorch computes (<name>.out), a random output seed r (<name>.r) and
PyTorch's gradients of sum(out * r) for every float input that wants one
(<name>.grad<k>). PyTorch runs in float64 on the float32 inputs, so the
reference is the exact value the float32 C code should approach. The
metadata entry "case.<name>" names the C kind (tests/lib/cases_*.c).
"""
import torch
from safetensors.torch import save_file


class RefFile:
    def __init__(self, seed):
        self.tensors = {}
        self.meta = {}
        self.gen = torch.Generator().manual_seed(seed)

    def randn(self, *shape, scale=1.0):
        return (torch.randn(*shape, generator=self.gen) * scale).float()

    def rand(self, *shape, lo=0.0, hi=1.0):
        return (torch.rand(*shape, generator=self.gen) * (hi - lo) + lo).float()

    def away_from(self, x, points, margin=0.05):
        """Moves values within margin of any point (kinks, like 0 for ReLU) out of it."""
        for p in points:
            near = (x - p).abs() < margin
            x = torch.where(near, p + margin * torch.sign(x - p + 1e-12) * 2, x)
        return x

    def case(self, name, kind, inputs, fn, args=(), grads=None, fwd_tol=None):
        """inputs: float32 or integer tensors; grads: which inputs want a
        gradient (default: every float input)."""
        assert "case." + name not in self.meta, name
        if grads is None:
            grads = [x.is_floating_point() for x in inputs]
        xs = []
        for x, g in zip(inputs, grads):
            x64 = x.double() if x.is_floating_point() else x.clone()
            xs.append(x64.requires_grad_(bool(g)))
        out = fn(*xs)
        r = torch.randn(out.shape, generator=self.gen).double()
        if any(grads):
            (out * r).sum().backward()
        for k, x in enumerate(inputs):
            self.tensors[f"{name}.in{k}"] = x.contiguous()
            if grads[k]:
                g = xs[k].grad
                if g is None:
                    g = torch.zeros_like(xs[k])
                self.tensors[f"{name}.grad{k}"] = g.float().contiguous()
        if args:
            self.tensors[f"{name}.args"] = torch.tensor(list(args), dtype=torch.int64)
        self.tensors[f"{name}.out"] = out.detach().float().contiguous()
        self.tensors[f"{name}.r"] = r.float().contiguous()
        self.meta["case." + name] = kind
        if fwd_tol is not None:
            self.meta["fwd_tol." + name] = str(fwd_tol)

    def save(self, path):
        save_file(self.tensors, path, metadata=self.meta)
        print(f"wrote {path}: {len(self.meta)} entries, {len(self.tensors)} tensors")
