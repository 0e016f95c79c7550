"""bench_train_torch.py - one training step of the full-size AAVS head in
PyTorch, the work bench_train does, on the given threads. Prints the rows
bench_train prints.

The architecture is HuggingFace transformers' Mask2Former (the modules the
official AAVS code copies: Mask2FormerPixelDecoder, Mask2FormerTransformerModule,
the class predictor and Mask2FormerLoss), built from a Mask2FormerConfig with
the swin-base ADE sizes and called on backbone-shaped random features (no
backbone is built). The AAVS additions are added as the official code has them:
  avs_adapt, Linear(C, C/4) -> ReLU -> Linear(C/4, C) replacing the output of
    every deformable attention (after output_proj for avss; instead of it for
    avs) and of every decoder self-attention (after out_proj for avss; instead
    of it for avs);
  audio_proj, Linear(128, 512) -> ReLU -> Linear(512, 256), and the audio
    queries: queries_features + cosine_similarity(queries_embedder, audio) * audio;
  avss: the prompt embeddings (silence/uncertain/audio_embed by the stage-1
    mask's value) added to the keys' position embeddings, and the stage-1 mask
    added to the mask features.
One difference: avss replaces the first attention mask by the stage-1 mask;
here the first mask comes from the first prediction, as in plain Mask2Former
(the same amount of work: a mask of the same shape either way).

Columns as bench_train's: seconds per step (mean of STEPSTONE_BENCH_STEPS steps
after one warm-up; default 1 here, where a step takes about a minute on 2
cores), the process's max RSS growth over building the
head and training (the inputs are made before), "-" for the arenas (PyTorch has
none), and the trainable parameter count in millions. Each row runs in a
process of its own, as bench_train's do; the avs rows only with
STEPSTONE_BENCH_AVS=1, as there."""
import os
import resource
import subprocess
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F
from transformers import Mask2FormerConfig, SwinConfig
from transformers.models.mask2former.modeling_mask2former import (
    Mask2FormerAttention,
    Mask2FormerLoss,
    Mask2FormerPixelDecoder,
    Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention,
    Mask2FormerTransformerModule,
)

FRAMES, IMAGE, BOOST = 5, 384, 224
FEATURES = ((128, 96), (256, 48), (512, 24), (1024, 12))
ROWS = ("train.avss.phase1", "train.avss.all_head", "train.avs.phase1", "train.avs.all_head")
# set_params of avs/train.py and avss/train.py (de6a17b), as aavs_trainable_patterns
PHASE1 = {
    "avs": ("queries_embedder", "queries_features", "avs_adapt", "class_predictor", "audio_proj"),
    "avss": ("queries_embedder", "avs_adapt", "class_predictor", "audio_proj", "audio_embed", "silence_embed",
             "uncertain_embed"),
}


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Adapted(nn.Module):
    """A projection followed (avss) or replaced (avs) by avs_adapt."""

    def __init__(self, proj, dim, keep_proj):
        super().__init__()
        self.proj = proj
        self.keep_proj = keep_proj
        self.avs_adapt = nn.Sequential(nn.Linear(dim, dim // 4), nn.ReLU(), nn.Linear(dim // 4, dim))

    def forward(self, x):
        return self.avs_adapt(self.proj(x) if self.keep_proj else x)


class Head(nn.Module):
    def __init__(self, cfg, variant):
        super().__init__()
        self.variant = variant
        c = cfg.hidden_dim
        self.pixel_decoder = Mask2FormerPixelDecoder(cfg, feature_channels=[ch for ch, _ in FEATURES])
        self.transformer_module = Mask2FormerTransformerModule(in_features=cfg.feature_size, config=cfg)
        self.class_predictor = nn.Linear(c, cfg.num_labels + 1)
        self.audio_proj = nn.Sequential(nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, c))
        if variant == "avss":
            self.audio_embed = nn.Parameter(torch.zeros(1, c))
            self.silence_embed = nn.Parameter(torch.zeros(1, c))
            self.uncertain_embed = nn.Parameter(torch.zeros(1, c))
        keep = variant == "avss"
        for m in self.modules():
            if isinstance(m, Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention):
                m.output_proj = Adapted(m.output_proj, c, keep)
            elif isinstance(m, Mask2FormerAttention):
                m.out_proj = Adapted(m.out_proj, c, keep)
        # random weights as bench_train's: N(0, 0.02^2), norms at torch's 1 and 0
        for m in self.modules():
            if isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
                continue
            for p in m.parameters(recurse=False):
                nn.init.normal_(p, std=0.02)
        weights = {"loss_cross_entropy": cfg.class_weight, "loss_mask": cfg.mask_weight, "loss_dice": cfg.dice_weight}
        self.weights = weights
        self.criterion = Mask2FormerLoss(config=cfg, weight_dict=weights)

    def forward(self, features, audio_embeddings, boost, mask_labels, class_labels):
        pd = self.pixel_decoder(features)
        ms, mask_features = pd.multi_scale_features, pd.mask_features
        tm = self.transformer_module
        audio = self.audio_proj(audio_embeddings)  # [F, C]
        pos, values, sizes = [], [], []
        for i in range(tm.num_feature_levels):
            sizes.append(ms[i].shape[-2:])
            p = tm.position_embedder(ms[i], None)
            if boost is not None:
                b = F.interpolate(boost[:, None], size=ms[i].shape[-2:], mode="bilinear", align_corners=False)
                prompt = torch.where(b <= 0.4, self.silence_embed[..., None, None],
                                     torch.where(b >= 0.6, self.audio_embed[..., None, None],
                                                 self.uncertain_embed[..., None, None]))
                p = p + prompt
            pos.append(p.flatten(2).permute(2, 0, 1))
            values.append((tm.input_projections[i](ms[i]).flatten(2) + tm.level_embed.weight[i][None, :, None])
                          .permute(2, 0, 1))
        qe = tm.queries_embedder.weight
        sim = F.cosine_similarity(qe[:, None, :], audio[None], dim=-1)  # [Q, F]
        queries = tm.queries_features.weight[:, None, :] + sim[..., None] * audio[None]
        if boost is not None:
            mask_features = mask_features + F.interpolate(boost[:, None], size=mask_features.shape[-2:],
                                                          mode="bilinear", align_corners=False)
        dec = tm.decoder(inputs_embeds=queries, multi_stage_positional_embeddings=pos, pixel_embeddings=mask_features,
                         encoder_hidden_states=values, query_position_embeddings=qe[:, None].repeat(1, FRAMES, 1),
                         feature_size_list=sizes, return_dict=True)
        classes = [self.class_predictor(h.transpose(0, 1)) for h in dec.intermediate_hidden_states]
        masks = dec.masks_queries_logits
        aux = [{"masks_queries_logits": m, "class_queries_logits": c} for m, c in zip(masks[:-1], classes[:-1])]
        losses = self.criterion(masks[-1], classes[-1], mask_labels, class_labels, aux)
        # Mask2FormerForUniversalSegmentation.get_loss_dict and get_loss
        for key, w in self.weights.items():
            for k in losses:
                if key in k:
                    losses[k] = losses[k] * w
        return sum(losses.values())


def object_at(f, y, x):
    """bench_train's targets: a disc (1) and a rectangle (2) moving with frame f."""
    disc = (y - (120 + 20 * f)) ** 2 + (x - 150) ** 2 < 60 * 60
    rect = (y >= 200) & (y < 330) & (x >= 40 + 10 * f) & (x < 200 + 10 * f)
    return torch.where(disc, 1, torch.where(rect, 2, 0))


def run_row(row, threads, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(2)
    variant, preset = row.split(".")[1:]
    labels, queries = (71, 100) if variant == "avss" else (2, 30)
    features = [torch.randn(FRAMES, ch, s, s) for ch, s in FEATURES]
    audio = torch.randn(FRAMES, 128)
    yy, xx = torch.meshgrid(torch.arange(IMAGE), torch.arange(IMAGE), indexing="ij")
    mask_labels, class_labels = [], []
    for f in range(FRAMES):
        o = object_at(f, yy, xx)
        if variant == "avss":
            mask_labels.append(torch.stack([o == k for k in range(3)]).float())
            class_labels.append(torch.tensor([0, 3 + f, 20 + 5 * f]))
        else:
            mask_labels.append(torch.stack([o == 0, o != 0]).float())
            class_labels.append(torch.tensor([0, 1]))
    boost = None
    if variant == "avss":
        by, bx = torch.meshgrid(torch.arange(BOOST) * IMAGE // BOOST, torch.arange(BOOST) * IMAGE // BOOST,
                                indexing="ij")
        boost = torch.stack([(object_at(f, by, bx) != 0).float() for f in range(FRAMES)])
    rss0 = max_rss_mib()

    backbone = SwinConfig(image_size=IMAGE, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                          window_size=12, out_features=["stage1", "stage2", "stage3", "stage4"])
    cfg = Mask2FormerConfig(backbone_config=backbone, num_queries=queries, num_labels=labels)
    head = Head(cfg, variant).train()
    if preset == "phase1":
        for n, p in head.named_parameters():
            p.requires_grad_(any(k in n for k in PHASE1[variant]))
    trainable = [p for p in head.parameters() if p.requires_grad]
    # the recipe's optimizer (train.py: lr 1e-3, weight decay 0.05)
    opt = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.05)

    def step():
        loss = head(features, audio, boost, mask_labels, class_labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    loss = step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sec = (time.perf_counter() - t0) / steps
    n = sum(p.numel() for p in trainable)
    print(f"{row:<28} {sec:10.3f} {max_rss_mib() - rss0:10.1f} {'-':>10} {n / 1e6:10.3f}   # loss {loss:.4g}",
          flush=True)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    steps = max(1, int(os.environ.get("STEPSTONE_BENCH_STEPS", "1") or 1))
    if len(sys.argv) > 2:
        run_row(sys.argv[2], threads, steps)
        return
    print(f"{'# aavs head, 5x384x384':<28} {'s/step':>10} {'peak MiB':>10} {'arenas MiB':>10} {'trained M':>10}",
          flush=True)
    status = 0
    rows = ROWS if os.environ.get("STEPSTONE_BENCH_AVS") == "1" else ROWS[:2]
    for row in rows:  # a process per row: max RSS is a high-water mark
        status |= subprocess.run([sys.executable, __file__, str(threads), row]).returncode
    sys.exit(status)


if __name__ == "__main__":
    main()
