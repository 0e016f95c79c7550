"""scipy.optimize.linear_sum_assignment on cost matrices full of ties, where
the choice among equal optima depends on the solver's search order: the
cases tests/test_m2f_loss.c checks hungarian.c against (m2f_loss/hungarian/scipy).
Costs are small integers (exact in float32 and float64), square and
rectangular both ways, as the matcher meets them (queries x targets).
Run from the repository root: python3 tests/reference/hungarian_ref.py"""
import numpy as np
import scipy
import torch
from safetensors.torch import save_file
from scipy.optimize import linear_sum_assignment

rng = np.random.default_rng(17)
tensors = {}
shapes = [(r, c) for r in range(1, 9) for c in range(1, 9)] + [(30, 3), (3, 30), (100, 5), (12, 12)]
n = 0
for rows, cols in shapes:
    for levels in (2, 3, 6):
        cost = rng.integers(0, levels, size=(rows, cols)).astype(np.float32)
        r, c = linear_sum_assignment(cost)
        tensors[f"case{n}.cost"] = torch.from_numpy(cost)
        tensors[f"case{n}.row"] = torch.from_numpy(r.astype(np.int64))
        tensors[f"case{n}.col"] = torch.from_numpy(c.astype(np.int64))
        n += 1
save_file(tensors, "tests/reference/hungarian_ref.safetensors",
          metadata={"cases": str(n), "scipy": scipy.__version__})
print(f"{n} cases, scipy {scipy.__version__}")
