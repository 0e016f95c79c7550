"""Reference cases for the losses of Mask2Former's criterion: BCE with logits,
dice, weighted cross-entropy, and the composites the criterion builds.
Run from the repository root: python3 tests/reference/ops_loss.py"""
import torch
import torch.nn.functional as F

from refcase import RefFile

R = RefFile(seed=5)


def binary(*shape):
    return (R.rand(*shape) > 0.6).float()


# Mask2Former (HF modeling_mask2former.py), written out as there
def sigmoid_cross_entropy_loss(inputs, labels, num_masks):
    loss = F.binary_cross_entropy_with_logits(inputs, labels, reduction="none")
    return loss.mean(1).sum() / num_masks


def dice_loss_rows(inputs, labels):
    probs = inputs.sigmoid().flatten(1)
    numerator = 2 * (probs * labels).sum(-1)
    denominator = probs.sum(-1) + labels.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def bce(x, t):
    return F.binary_cross_entropy_with_logits(x, t, reduction="none")


# BCE with logits, elementwise: the target is a constant (no gradient)
R.case("bce_binary", "bce_with_logits", [R.randn(5, 37, scale=3.0), binary(5, 37)], bce, grads=[True, False])
R.case("bce_soft_3d", "bce_with_logits", [R.randn(2, 3, 11, scale=2.0), R.rand(2, 3, 11)], bce,
       grads=[True, False])
# large |x|: the stable form must neither overflow nor lose the small side
big = R.randn(4, 9, scale=25.0)
R.case("bce_large_logits", "bce_with_logits", [big, binary(4, 9)], bce, grads=[True, False])
R.case("bce_mask_loss", "bce_mask_loss", [R.randn(7, 53, scale=2.0), binary(7, 53)],
       lambda x, t: sigmoid_cross_entropy_loss(x, t, 3), args=(3,), grads=[True, False])
R.case("bce_mask_loss_one", "bce_mask_loss", [R.randn(1, 29, scale=2.0), binary(1, 29)],
       lambda x, t: sigmoid_cross_entropy_loss(x, t, 1), args=(1,), grads=[True, False])

# dice per row; a row with an empty target and a row with a full one included
t = binary(6, 41)
t[1] = 0.0
t[4] = 1.0
R.case("dice_binary", "dice_loss", [R.randn(6, 41, scale=2.0), t], dice_loss_rows, grads=[True, False])
R.case("dice_soft", "dice_loss", [R.randn(3, 17, scale=3.0), R.rand(3, 17)], dice_loss_rows, grads=[True, False])
R.case("dice_one_row", "dice_loss", [R.randn(1, 64), binary(1, 64)], dice_loss_rows, grads=[True, False])
R.case("dice_mask_loss", "dice_mask_loss", [R.randn(5, 47, scale=2.0), binary(5, 47)],
       lambda x, t: dice_loss_rows(x, t).sum() / 4, args=(4,), grads=[True, False])


# weighted cross-entropy, reduction "mean" (sum w[y] nll / sum w[y])
def xent(ignore_index):
    return lambda logits, target, *w: F.cross_entropy(logits, target, weight=w[0] if w else None,
                                                      ignore_index=ignore_index)


# Mask2Former's class loss: num_labels + 1 classes, the last is "no object" with
# weight eos_coef = 0.1, and most queries are matched to no object
num_labels, rows = 71, 60
target = torch.full((rows,), num_labels, dtype=torch.int64)
target[torch.randperm(rows, generator=R.gen)[:7]] = torch.randint(0, num_labels, (7,), generator=R.gen)
w = torch.ones(num_labels + 1)
w[-1] = 0.1
R.case("xent_m2f_class", "cross_entropy", [R.randn(rows, num_labels + 1, scale=2.0), target, w],
       xent(-100), args=(-100,), grads=[True, False, False])
# the same with a handful of labels, batch 2 x 5 queries
target = torch.tensor([3, 3, 1, 3, 3, 0, 3, 3, 2, 3])
w = torch.tensor([1.0, 1.0, 1.0, 0.1])
R.case("xent_m2f_small", "cross_entropy", [R.randn(10, 4, scale=1.5), target, w], xent(-100), args=(-100,),
       grads=[True, False, False])
# ignore_index rows (the default -100, and another value), weighted and not
target = torch.tensor([2, -100, 0, 4, -100, 1, 3])
R.case("xent_ignore_weighted", "cross_entropy", [R.randn(7, 5), target, R.rand(5, lo=0.2, hi=2.0)], xent(-100),
       args=(-100,), grads=[True, False, False])
target = torch.tensor([0, 255, 2, 255, 1, 2, 0, 255, 1])
R.case("xent_ignore_255", "cross_entropy", [R.randn(9, 3, scale=2.0), target], xent(255), args=(255,),
       grads=[True, False])
# no weight
R.case("xent_plain", "cross_entropy", [R.randn(13, 6, scale=2.0), torch.randint(0, 6, (13,), generator=R.gen)],
       xent(-100), args=(-100,), grads=[True, False])
R.case("xent_one_row", "cross_entropy", [R.randn(1, 9), torch.tensor([8])], xent(-100), args=(-100,),
       grads=[True, False])

R.save("tests/reference/ops_loss.safetensors")
