#!/usr/bin/env python3
"""metrics_ref.py - the metrics fixture and the numbers the official code gives on it.

Writes tests/fixtures/metrics/ (run from the repository root):
  data/                 a small AVSBench-semantic tree: metadata.csv, label2idx.json
                        and labels_rgb PNGs of sizes other than 224 (640x360, 96x72,
                        300x200, 448x448, 250x140, 320x240, 200x300, 224x224), RGB and
                        palette-mode, with blobs that move, an empty frame, a video
                        with no object at all, and off-palette pixels
  preds/avss/           class-id (gray) and palette/RGB colour predictions, several sizes
  preds/s4/, preds/ms3/ probability and 0/255 (and 0/1) predictions, several sizes
  expected.json         the official numbers (below) and the exact 224x224 maps
  expected_class_maps.png, expected_binary_masks.png
                        the ground-truth maps the official loaders make, stacked
                        vertically in the order of expected.json's "labels"

How the official code is used (nothing of it is copied into this repository):
the script IMPORTS and CALLS the official functions from checkouts given on the
command line (or fetched git dirs, read with `git archive`):
  Stepping-Stones  avss/dataset.py            get_v2_pallete, load_color_mask_in_PIL_to_Tensor
                   avss/scripts/evaluation.py test()          (AVSS headline numbers)
                   avss/utils/cal_color_metric.py miou_fscore (per-class sums)
                   avs/scripts/evaluation.py  test_avs()      (S4/MS3, rounded numbers)
                   avs/utils/utility.py       mask_iou, Eval_Fmeasure (per video)
  AVSBench         avs_scripts/avs_s4/utils/utility.py mask_iou, Eval_Fmeasure
Modules those files import but these functions never use (towhee, transformers,
pandas, torchvision) are replaced by empty stand-ins; `.cuda()` is the identity.
Two small pieces are re-implemented verbatim-in-spirit because the official code
has them inline, not as functions: the avs/ loader's binary ground truth
(avs/dataset.py lines 181-184: cv2.imread, cv2.resize to 224, BGR2GRAY, > 0) and
the final division of test()'s per-class sums (to get the per-class table, which
test() does not return).

Predictions are turned into the official functions' inputs by stepstone's
documented rules: AVSS gray PNG = class ids (PIL nearest resize to 224), colour PNG
= read like a label (the official label loader); S4/MS3 gray PNG value v (a 0/1
map is taken as 0/255), cv2 bilinear resize to 224 when needed, p = v/255, fed
as logit(p) to AVSBench's functions and as two channels (0, logit(p)/2) to
Stepping-Stones' (argmax there is p > 0.5, sigmoid(2*l1 - l0) is p).

Needs: torch, numpy, pillow, opencv-python-headless; git for fetched dirs.
Usage:
  python3 tests/reference/metrics_ref.py --stepping-stones DIR --avsbench DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np
import cv2
import torch
from PIL import Image

OUT = "tests/fixtures/metrics"
NAMES = ("background accordion airplane axe baby bassoon bell bird boat boy bus car cat cello clarinet clipper "
         "clock dog donkey drum duck elephant emergency-car erhu flute frying-food girl goose guitar gun guzheng "
         "hair-dryer handpan harmonica harp helicopter hen horse keyboard leopard lion man marimba missile-rocket "
         "motorcycle mower parrot piano pig pipa saw saxophone sheep sitar sorna squirrel tabla tank tiger tractor "
         "train trombone truck trumpet tuba ukulele utv vacuum-cleaner violin wolf woman").split()
assert len(NAMES) == 71

# videos: uid, subset, split, label size (w, h), storage, classes
VIDEOS = [
    ("s4a", "v1s", "test", (640, 360), "RGB", [17]),
    ("s4b", "v1s", "test", (96, 72), "P", [5]),
    ("s4c", "v1s", "test", (300, 200), "RGB", []),          # no object in any frame
    ("s4t", "v1s", "train", (320, 180), "RGB", [17]),      # train: frame 0 only
    ("ms3a", "v1m", "test", (448, 448), "P", [7, 40]),      # exact halving: OpenCV's area path
    ("ms3b", "v1m", "test", (250, 140), "RGB", [12, 61]),
    ("v2a", "v2", "test", (320, 240), "RGB", [3, 44, 66]),  # + off-palette pixels in frame 3
    ("v2b", "v2", "test", (200, 300), "P", [29, 52]),
    ("v2v", "v2", "val", (224, 224), "RGB", [8]),
]


def palette():
    pal = np.zeros((71, 3), np.uint8)
    for j in range(71):
        lab, i = j, 0
        while lab > 0:
            pal[j, 0] |= ((lab >> 0) & 1) << (7 - i)
            pal[j, 1] |= ((lab >> 1) & 1) << (7 - i)
            pal[j, 2] |= ((lab >> 2) & 1) << (7 - i)
            i += 1
            lab >>= 3
    return pal


PAL = palette()


def frames_of(subset):
    return 10 if subset == "v2" else 5


def labelled(subset, split, i):
    return i == 0 if (subset == "v1s" and split == "train") else True


def draw_label(rng, w, h, classes, t, uid, i):
    """class map h x w: ellipses and rectangles that move with t"""
    m = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for k, c in enumerate(classes):
        if uid == "s4b" and i == 2:
            continue  # an empty frame inside a video
        cx = w * (0.25 + 0.5 * ((k * 0.37 + 0.09 * t) % 1.0))
        cy = h * (0.3 + 0.4 * ((k * 0.53 + 0.05 * t) % 1.0))
        rx, ry = w * (0.12 + 0.05 * k), h * (0.15 + 0.04 * ((k + t) % 3))
        if k % 2 == 0:
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        else:
            inside = (np.abs(xx - cx) <= rx) & (np.abs(yy - cy) <= ry)
        m[inside] = c
    return m


def save_label(path, cls_map, storage, off_palette=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if storage == "P":
        im = Image.fromarray(cls_map, "P")
        im.putpalette(PAL.flatten().tolist() + [0] * (768 - 213))
        im.save(path, optimize=True)
    else:
        rgb = PAL[cls_map]
        if off_palette is not None:
            for (y0, x0, y1, x1, colour) in off_palette:
                rgb[y0:y1, x0:x1] = colour
        Image.fromarray(rgb, "RGB").save(path, optimize=True)


def make_tree(rng):
    data = os.path.join(OUT, "data")
    if os.path.isdir(data):
        shutil.rmtree(data)
    os.makedirs(data)
    with open(os.path.join(data, "metadata.csv"), "w") as f:
        f.write("vid,uid,s_min,s_sec,a_obj,split,label\n")
        for n, (uid, subset, split, size, storage, classes) in enumerate(VIDEOS):
            objs = "_".join(NAMES[c] for c in classes) or "none"
            f.write('yt%03d,%s,0,%d,"%s",%s,%s\n' % (n, uid, n, objs, split, subset))
    with open(os.path.join(data, "label2idx.json"), "w") as f:
        # values numbered from 1, as the published file may: only positions count
        json.dump({name: i + 1 for i, name in enumerate(NAMES)}, f, indent=1)
    labels = []
    for uid, subset, split, (w, h), storage, classes in VIDEOS:
        for i in range(frames_of(subset)):
            if not labelled(subset, split, i):
                continue
            m = draw_label(rng, w, h, classes, i, uid, i)
            off = None
            if uid == "v2a" and i == 3:
                off = [(10, 10, 14, 17, (5, 5, 5)), (100, 200, 103, 203, (200, 100, 50))]
            path = os.path.join(data, subset, uid, "labels_rgb", "%d.png" % i)
            save_label(path, m, storage, off)
            labels.append(path)
    return data, labels


# ---------------------------------------------------------------- official code

def stub_modules():
    for name in ("towhee", "transformers", "pandas", "torchvision"):
        if name in sys.modules:
            continue
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.pipe = mod.ops = None
            mod.Mask2FormerImageProcessor = object
            mod.transforms = types.SimpleNamespace()
            sys.modules[name] = mod
            if name == "torchvision":
                sys.modules["torchvision.transforms"] = mod.transforms
    torch.Tensor.cuda = lambda self, *a, **k: self


def checkout(path, paths, tmp, name):
    """a work tree as is, or `git archive` of a git dir into tmp/name"""
    if os.path.isdir(os.path.join(path, paths[0])):
        return path
    dest = os.path.join(tmp, name)
    os.makedirs(dest, exist_ok=True)
    tar = subprocess.run(["git", "--git-dir", path, "archive", "HEAD"] + list(paths), check=True,
                         capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=tar, check=True)
    return dest


def load_module(name, path, extra_path):
    import importlib.util
    sys.path.insert(0, extra_path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.path.remove(extra_path)
    return mod


def fresh_import(root, modname):
    """import root/<modname> as a package tree rooted at root (avs/ or avss/)"""
    for k in [k for k in sys.modules if k in ("utils", "scripts") or k.startswith(("utils.", "scripts."))]:
        del sys.modules[k]
    sys.path.insert(0, root)
    try:
        return __import__(modname, fromlist=["*"])
    finally:
        sys.path.remove(root)


# ---------------------------------------------------------------- predictions

def binary_truth(path):
    """avs/dataset.py lines 181-184, verbatim in spirit"""
    mask_cv2 = cv2.imread(path)
    mask_cv2 = cv2.resize(mask_cv2, (224, 224))
    mask_cv2 = cv2.cvtColor(mask_cv2, cv2.COLOR_BGR2GRAY)
    return torch.as_tensor((mask_cv2 > 0), dtype=torch.float32)


def write_gray(path, a):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(a.astype(np.uint8), "L").save(path, optimize=True)


def make_avss_pred(rng, truth, k, path):
    """a perturbed copy of the truth map in one of several storages"""
    p = truth.copy()
    p = np.roll(p, (k % 5) - 2, axis=1)
    p = np.roll(p, (k % 3) - 1, axis=0)
    kind = k % 5
    if kind == 1:
        p[p == p.max()] = 9          # a class predicted that is absent
    if kind == 2:
        p[40:60, 40:90] = 23         # a spurious blob
    noise = rng.random(p.shape) < 0.01               # scattered wrong pixels of a few classes
    choices = np.array(sorted(set(np.unique(truth).tolist()) | {0, 9}), np.uint8)
    p[noise] = rng.choice(choices, noise.sum())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind in (0, 1):
        write_gray(path, p)                                        # class ids, 224
    elif kind == 2:
        big = Image.fromarray(p, "L").resize((300, 260), Image.NEAREST)
        big.save(path)                                             # class ids, other size
    elif kind == 3:
        im = Image.fromarray(p, "P")
        im.putpalette(PAL.flatten().tolist() + [0] * (768 - 213))
        im.save(path)                                              # palette colours
    else:
        rgb = PAL[p]
        rgb[5:8, 5:30] = (1, 2, 3)                                 # off-palette colour
        Image.fromarray(rgb, "RGB").resize((160, 120), Image.NEAREST).save(path)


def read_avss_pred(path, pal_official, ss_dataset):
    im = Image.open(path)
    if im.mode == "L":
        return torch.from_numpy(np.asarray(im.resize((224, 224), Image.NEAREST)).astype(np.int64))
    return ss_dataset.load_color_mask_in_PIL_to_Tensor(path, v_pallete=pal_official)


def make_prob_pred(rng, truth, k, path):
    t = truth.numpy()
    kind = k % 6
    if kind == 0:                                   # hard 0/255 mask, shifted
        a = np.roll(t, 3, axis=1) * 255
    elif kind == 1:                                 # soft probabilities
        soft = cv2.GaussianBlur(t.astype(np.float32), (0, 0), 6)
        wobble = cv2.resize(rng.normal(0, 25, (14, 14)).astype(np.float32), (224, 224))
        a = np.clip(soft * 230 + wobble + 10, 0, 255)
    elif kind == 2:                                 # 0/1 mask
        a = np.roll(t, -2, axis=0)
    elif kind == 3:                                 # probabilities at 112x112
        soft = cv2.GaussianBlur(t.astype(np.float32), (0, 0), 3)
        a = cv2.resize(np.clip(soft * 255, 0, 255), (112, 112))
    elif kind == 4:                                 # confident everywhere, wrong in places
        flip = np.kron(rng.random((28, 28)) < 0.1, np.ones((8, 8))) > 0
        a = np.where(flip, 1 - t, t) * 255
    else:                                           # a hard mask at 300x280
        a = cv2.resize((np.roll(t, 5, axis=0) * 255).astype(np.uint8), (300, 280), interpolation=cv2.INTER_NEAREST)
    write_gray(path, np.round(a))


def read_prob_pred(path):
    v = np.asarray(Image.open(path).convert("L"))
    if v.max() == 1:
        v = v * 255
    if v.shape != (224, 224):
        v = cv2.resize(v, (224, 224))
    return v.astype(np.float32) / np.float32(255.0)


def logit(p):
    with np.errstate(divide="ignore"):
        return (np.log(p) - np.log1p(-p)).astype(np.float32)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stepping-stones", required=True, help="checkout or git dir of GeWu-Lab/Stepping-Stones")
    ap.add_argument("--avsbench", required=True, help="checkout or git dir of OpenNLPLab/AVSBench")
    args = ap.parse_args()
    rng = np.random.default_rng(20240924)
    stub_modules()
    tmp = tempfile.mkdtemp()
    ss = checkout(args.stepping_stones, ["avs", "avss"], tmp, "stepping-stones")
    ab = checkout(args.avsbench, ["avs_scripts/avs_s4"], tmp, "avsbench")

    data, labels = make_tree(rng)
    ss_avss_root = os.path.join(ss, "avss")
    ss_dataset = load_module("ss_avss_dataset", os.path.join(ss_avss_root, "dataset.py"), ss_avss_root)
    pal_official = ss_dataset.get_v2_pallete(os.path.join(data, "label2idx.json"))
    assert (pal_official == PAL).all()

    # ground-truth maps as the official loaders make them
    class_maps, bin_masks, off_palette = [], [], {}
    for path in labels:
        cm = ss_dataset.load_color_mask_in_PIL_to_Tensor(path, v_pallete=pal_official)
        class_maps.append(cm.numpy().astype(np.uint8))
        bin_masks.append(binary_truth(path).numpy().astype(np.uint8))
        rgb = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.NEAREST)).reshape(-1, 3)
        known = (rgb[:, None, :] == PAL[None, :, :]).all(-1).any(-1)
        if (~known).sum():
            off_palette[os.path.relpath(path, OUT)] = int((~known).sum())
    Image.fromarray(np.concatenate(class_maps, 0), "L").save(os.path.join(OUT, "expected_class_maps.png"),
                                                             optimize=True)
    Image.fromarray(np.concatenate(bin_masks, 0) * 255, "L").save(os.path.join(OUT, "expected_binary_masks.png"),
                                                                  optimize=True)
    index = {p: n for n, p in enumerate(labels)}

    preds = os.path.join(OUT, "preds")
    if os.path.isdir(preds):
        shutil.rmtree(preds)

    def test_videos(subsets):
        return [v for s in subsets for v in VIDEOS if v[1] == s and v[2] == "test"]

    # ---- AVSS: official test() and miou_fscore
    ss_eval = fresh_import(ss_avss_root, "scripts.evaluation")
    ss_metric = fresh_import(ss_avss_root, "utils.cal_color_metric")
    loader, k = [], 0
    for uid, subset, split, size, storage, classes in test_videos(["v1s", "v1m", "v2"]):
        truths, vid_preds = [], []
        for i in range(frames_of(subset)):
            lp = os.path.join(data, subset, uid, "labels_rgb", "%d.png" % i)
            truth = class_maps[index[lp]]
            pp = os.path.join(preds, "avss", subset, uid, "%d.png" % i)
            make_avss_pred(rng, truth, k, pp)
            k += 1
            truths.append(torch.from_numpy(truth.astype(np.int64)))
            vid_preds.append(read_avss_pred(pp, pal_official, ss_dataset))
        loader.append({"mask_recs": torch.stack(truths), "preds": vid_preds, "vid": uid})

    class Model:
        def eval(self):
            pass

        def __call__(self, batch):
            return None, batch["preds"]

    res = ss_eval.test(Model(), loader, types.SimpleNamespace(save_mask=False))
    miou_pc, fs_pc, cls_pc = torch.zeros(71), torch.zeros(71), torch.zeros(71)
    for b in loader:
        a, f, c, _ = ss_metric.miou_fscore(torch.stack(b["preds"]).squeeze(), b["mask_recs"].float(), 71,
                                           len(b["mask_recs"]))
        miou_pc += a
        fs_pc += f
        cls_pc += c
    iou_c = miou_pc / cls_pc
    iou_c[torch.isnan(iou_c)] = 0
    f_c = fs_pc / cls_pc
    f_c[torch.isnan(f_c)] = 0
    assert abs(torch.mean(iou_c).item() - res["miou"]) < 1e-12
    expected = {"avss": dict(res, per_class_iou=[float(x) for x in iou_c], per_class_fscore=[float(x) for x in f_c],
                             per_class_count=[int(x) for x in cls_pc])}

    # ---- S4 / MS3
    avs_root = os.path.join(ss, "avs")
    ss_avs_eval = fresh_import(avs_root, "scripts.evaluation")
    ss_util = fresh_import(avs_root, "utils.utility")
    ab_util = load_module("ab_s4_utility", os.path.join(ab, "avs_scripts/avs_s4/utils/utility.py"),
                          os.path.join(ab, "avs_scripts/avs_s4"))
    measure_dir = tempfile.mkdtemp()
    for task, subset in (("s4", "v1s"), ("ms3", "v1m")):
        loader, per_video, ab_miou, ab_f, k = [], [], [], [], 0
        for uid, subset_, split, size, storage, classes in test_videos([subset]):
            truths, probs = [], []
            for i in range(frames_of(subset)):
                lp = os.path.join(data, subset, uid, "labels_rgb", "%d.png" % i)
                truth = torch.from_numpy(bin_masks[index[lp]].astype(np.float32))
                pp = os.path.join(preds, task, subset, uid, "%d.png" % i)
                make_prob_pred(rng, truth, k, pp)
                k += 1
                truths.append(truth)
                probs.append(read_prob_pred(pp))
            masks = torch.stack(truths)
            lg = torch.from_numpy(logit(np.stack(probs)))
            two = [torch.stack([torch.zeros_like(x), x / 2]) for x in lg]
            loader.append({"mask_recs": masks, "logits": two, "vid": uid})
            st = torch.stack(two)
            per_video.append([float(ss_util.mask_iou(st, masks).item()),
                              float(ss_util.Eval_Fmeasure(st, masks, None, device="cpu"))])
            ab_miou.append(float(ab_util.mask_iou(lg, masks).item()))
            ab_f.append(float(ab_util.Eval_Fmeasure(lg, masks, measure_dir)))

        class AvsModel:
            def eval(self):
                pass

            def __call__(self, batch):
                return None, batch["logits"]

        res = ss_avs_eval.test_avs(AvsModel(), loader, types.SimpleNamespace(save_mask=False, device="cpu",
                                                                             task=subset))
        miou = sum(v[0] for v in per_video) / len(per_video)
        fs = sum(v[1] for v in per_video) / len(per_video)
        assert round(miou, 6) == res["miou"] and round(fs, 6) == res["fscore"]
        expected[task] = {"miou": miou, "fscore": fs, "miou_rounded": res["miou"], "fscore_rounded": res["fscore"],
                          "per_video": per_video,
                          "avsbench": {"miou": sum(ab_miou) / len(ab_miou), "fscore": sum(ab_f) / len(ab_f)}}
    expected["thresholds"] = [float(x) for x in torch.linspace(0, 1 - 1e-10, 255)]
    expected["labels"] = [os.path.relpath(p, OUT) for p in labels]
    expected["off_palette"] = off_palette
    expected["versions"] = {"torch": torch.__version__, "opencv": cv2.__version__,
                            "pillow": Image.__version__ if hasattr(Image, "__version__") else ""}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    shutil.rmtree(tmp)
    shutil.rmtree(measure_dir)
    print(json.dumps({t: {k: v for k, v in expected[t].items() if not k.startswith("per_")} for t in
                      ("avss", "s4", "ms3")}, indent=1))


if __name__ == "__main__":
    main()
