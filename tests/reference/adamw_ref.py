"""Reference for tests/test_adamw.c: torch.optim.AdamW run for a few steps on
parameters of odd shapes with given gradients.
Run from the repository root: python3 tests/reference/adamw_ref.py

For each config <c> the file holds:
  <c>.hyper          f32 [5]: lr, beta1, beta2, eps, weight_decay (the default group)
  <c>.group          i64 [n_params]: the parameter group of each parameter
  <c>.group_lr       f32 [steps, n_groups]: each group's lr at each step (a schedule)
  <c>.has_grad       i64 [steps, n_params]: 0 where the parameter's .grad is None
  <c>.p<k>.init      parameter k before the first step
  <c>.p<k>.grad<s>   its gradient at step s (1-based; zeros where has_grad is 0)
  <c>.p<k>.step<s>   the parameter after step s
  <c>.p<k>.exp_avg, <c>.p<k>.exp_avg_sq   torch's moments after the last step
  <c>.p<k>.state_step                     i64 [1]: torch's state["step"] at the end
torch runs in float32, as the training does.
"""
import torch
from safetensors.torch import save_file

metadata = {}

gen = torch.Generator().manual_seed(11)
tensors = {}


def run(cfg, shapes, groups, group_lr, has_grad, grad_scale, lr, betas, eps, weight_decay):
    steps, n_groups = len(group_lr), len(group_lr[0])
    params = [torch.nn.Parameter((torch.randn(*s, generator=gen) * 0.8).float()) for s in shapes]
    param_groups = []
    for g in range(n_groups):
        members = [p for p, pg in zip(params, groups) if pg == g]
        param_groups.append({"params": members, "lr": group_lr[0][g]})
    opt = torch.optim.AdamW(param_groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                            foreach=False)
    for k, p in enumerate(params):
        tensors[f"{cfg}.p{k}.init"] = p.detach().clone()
    for s in range(steps):
        for g, pg in enumerate(opt.param_groups):
            pg["lr"] = group_lr[s][g]
        opt.zero_grad(set_to_none=True)
        for k, p in enumerate(params):
            g = (torch.randn(p.shape, generator=gen) * grad_scale).float()
            if has_grad[s][k]:
                p.grad = g
            else:
                g = torch.zeros_like(g)
            tensors[f"{cfg}.p{k}.grad{s + 1}"] = g.clone()
        opt.step()
        for k, p in enumerate(params):
            tensors[f"{cfg}.p{k}.step{s + 1}"] = p.detach().clone()
    for k, p in enumerate(params):
        st = opt.state[p]
        tensors[f"{cfg}.p{k}.exp_avg"] = st["exp_avg"].clone()
        tensors[f"{cfg}.p{k}.exp_avg_sq"] = st["exp_avg_sq"].clone()
        tensors[f"{cfg}.p{k}.state_step"] = torch.tensor([int(st["step"])], dtype=torch.int64)
    tensors[f"{cfg}.hyper"] = torch.tensor([lr, betas[0], betas[1], eps, weight_decay], dtype=torch.float32)
    # the same in full (double) precision: 1 - beta must be formed from the Python float
    metadata[f"{cfg}.hyper"] = ",".join(repr(float(x)) for x in (lr, betas[0], betas[1], eps, weight_decay))
    tensors[f"{cfg}.group"] = torch.tensor(groups, dtype=torch.int64)
    tensors[f"{cfg}.group_lr"] = torch.tensor(group_lr, dtype=torch.float32)
    tensors[f"{cfg}.has_grad"] = torch.tensor(has_grad, dtype=torch.int64)


# A: the official settings (lr 1e-3, weight_decay 0.05, eps 1e-8, betas (0.9, 0.999)),
# one group; parameter 1 has no gradient at step 3 (torch skips it: no decay, no step count)
run("A", shapes=[(3, 5), (7,), (2, 3, 4)], groups=[0, 0, 0], group_lr=[[1e-3]] * 5,
    has_grad=[[1, 1, 1], [1, 1, 1], [1, 0, 1], [1, 1, 1], [1, 1, 1]], grad_scale=1.0,
    lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
# B: another config with two groups of their own lr (as phase 2: adapters at 1e-4),
# a schedule that changes group 0's lr at step 4, gradients small enough that eps
# matters, and parameter 2 first reached at step 2
run("B", shapes=[(5, 3), (1, 9), (11,)], groups=[0, 1, 0],
    group_lr=[[1e-2, 1e-4], [1e-2, 1e-4], [1e-2, 1e-4], [5e-3, 1e-4], [5e-3, 1e-4], [5e-3, 1e-4]],
    has_grad=[[1, 1, 0], [1, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]], grad_scale=3e-6,
    lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)

save_file(tensors, "tests/reference/adamw_ref.safetensors", metadata=metadata)
print(f"wrote tests/reference/adamw_ref.safetensors: {len(tensors)} tensors")
