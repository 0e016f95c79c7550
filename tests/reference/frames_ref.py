"""frames_ref.py - fixtures and references for tests/test_frames.c.

The official AVSS loader (avss/dataset.py) reads each frame with
cv2.imread + cvtColor(BGR2RGB), transposes it to CHW and hands the list to
Mask2FormerImageProcessor(avss/.models/preprocessor_config.json).preprocess,
which resizes each image with PIL (bilinear, on uint8), rescales by 1/255 and
normalizes. This script

  1. (--fixtures) writes synthetic textured images of several sizes and JPEG
     kinds into tests/fixtures/frames/ (deterministic content; the encoded
     bytes depend on the encoder versions, which is why they are committed),
     plus the official preprocessor_config.json;
  2. decodes every fixture with OpenCV, runs the official processor on them,
     and writes tests/reference/frames_ref.safetensors, kept small:
       metadata  <stem>.rgb_sha256      SHA-256 of cv2's RGB (HWC bytes)
                 <stem>.shape          "HxW" after OpenCV's EXIF orientation
                 <stem>.resized_sha256  SHA-256 of the processor's resized
                                       uint8 image (its own resize method), HWC
                 <stem>.resized_hfirst_sha256  the same resize as Pillow <= 12
                                       computes it (horizontal pass first)
                 <stem>.pixel_sha256    SHA-256 of pixel_values' f32 bytes, CHW
                 <stem>.<filter>_<W>x<H>_sha256  Pillow Image.resize with other
                                       filters and sizes, HWC (+ _hfirst_sha256
                                       where Pillow <= 12 differs)
                 pillow_pass_order     "pillow13" or "horizontal_first": which
                                       pass order this Pillow uses
       tensors   <stem>.rgb_rows       U8 [3, W, 3]: rows 0, H/2, H-1 of cv2's RGB
                 <stem>.resized_rows   U8 [3, 384, 3]: rows 0, 192, 383
                 <stem>.pixel_row      F32 [3, 384]: pixel_values row 300
                 norm_table            F32 [3, 256]: the processor's output for
                                       each uint8 value of each channel
  The C test checks the full images through the checksums and shows where they
  differ through the rows; norm_table (from the processor itself, on an image
  that holds every value) turns the exact resized image into the full expected
  pixel_values, so the 1e-6 bound is checked on every element.

Run from the repository root:
  python3 tests/reference/frames_ref.py --fixtures   # regenerate images too
  python3 tests/reference/frames_ref.py              # references only
Needs opencv-python-headless, pillow, numpy, safetensors, transformers (4.35.2).
"""
import hashlib
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image
from safetensors.numpy import save_file

FIX = "tests/fixtures/frames"
OUT = "tests/reference/frames_ref.safetensors"

# avss/.models/preprocessor_config.json of GeWu-Lab/Stepping-Stones, verbatim.
OFFICIAL_CONFIG = {
    "_max_size": 2560,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "ignore_index": 255,
    "image_mean": [0.48500001430511475, 0.4560000002384186, 0.4059999883174896],
    "image_processor_type": "Mask2FormerImageProcessor",
    "image_std": [0.2290000021457672, 0.2239999920129776, 0.22499999403953552],
    "num_labels": 71,
    "reduce_labels": False,
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 384, "width": 384},
    "size_divisor": 32,
}

# (file, width, height, how it is written)
FIXTURES = [
    ("a_640x360_420.jpg", 640, 360, "pil q90 4:2:0"),
    ("b_333x257_420.jpg", 333, 257, "pil q85 4:2:0"),
    ("c_200x150_422.jpg", 200, 150, "pil q92 4:2:2"),
    ("d_1001x563_420.jpg", 1001, 563, "pil q75 4:2:0"),
    ("e_384x384_444.jpg", 384, 384, "pil q90 4:4:4"),
    ("f_321x480_gray.jpg", 321, 480, "pil q90 gray"),
    ("g_97x61_progressive.jpg", 97, 61, "pil q88 4:2:0 progressive"),
    ("h_257x129_exif6.jpg", 257, 129, "pil q90 4:2:0 exif orientation 6"),
    ("i_160x120_cmyk.jpg", 160, 120, "pil q90 cmyk"),
    ("j_243x171_440_rst.jpg", 243, 171, "cv2 q90 4:4:0 restart interval 2"),
    ("k_230x130_411.jpg", 230, 130, "cv2 q90 4:1:1"),
    ("l_90x60_rgb.png", 90, 60, "pil png rgb"),
    ("m_7x5_420.jpg", 7, 5, "pil q95 4:2:0"),
]

# Extra Pillow resizes checked bit for bit (filter name, Pillow constant).
EXTRA_FILTERS = [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC), ("lanczos", Image.LANCZOS),
                 ("box", Image.BOX), ("hamming", Image.HAMMING)]
EXTRA_SIZES = [(384, 384), (101, 67), (700, 410), (1, 1), (5, 700), (64, 100)]
EXTRA_STEMS = ["a_640x360_420", "b_333x257_420", "g_97x61_progressive", "h_257x129_exif6"]


def sha256(data: bytes) -> str:
    """The C test computes the same digest with libavutil's av_sha."""
    return hashlib.sha256(data).hexdigest()


def textured(w, h, seed):
    """Smooth gradients, sinusoids of several frequencies, sharp-edged shapes
    and mild noise: every DCT frequency and the chroma planes get work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy = rng.uniform(0.01, 0.2, 2)
        img[..., c] = 128 + 60 * np.sin(fx * x + c) * np.cos(fy * y - c) + 40 * (x / w - 0.5) * (c - 1)
    for _ in range(6):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        rw, rh = rng.integers(w // 10 + 1, w // 3 + 2), rng.integers(h // 10 + 1, h // 3 + 2)
        img[y0:y0 + rh, x0:x0 + rw] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_fixtures():
    os.makedirs(FIX, exist_ok=True)
    for i, (name, w, h, how) in enumerate(FIXTURES):
        rgb = textured(w, h, 1000 + i)
        path = os.path.join(FIX, name)
        words = how.split()
        if name.endswith(".png"):
            Image.fromarray(rgb).save(path)
        elif words[0] == "pil":
            q = int(words[1][1:])
            if "gray" in how:
                Image.fromarray(rgb).convert("L").save(path, quality=q)
            elif "cmyk" in how:
                Image.fromarray(rgb).convert("CMYK").save(path, quality=q)
            else:
                sub = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[words[2]]
                kw = {"quality": q, "subsampling": sub}
                if "progressive" in how:
                    kw["progressive"] = True
                if "exif" in how:
                    exif = Image.Exif()
                    exif[0x0112] = int(words[-1])
                    kw["exif"] = exif.tobytes()
                Image.fromarray(rgb).save(path, **kw)
        else:
            q = int(words[1][1:])
            factor = {"4:4:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
                      "4:1:1": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411}[words[2]]
            params = [cv2.IMWRITE_JPEG_QUALITY, q, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor]
            if "restart" in how:
                params += [cv2.IMWRITE_JPEG_RST_INTERVAL, int(words[-1])]
            assert cv2.imwrite(path, rgb[..., ::-1], params)
    with open(os.path.join(FIX, "preprocessor_config.json"), "w") as f:
        json.dump(OFFICIAL_CONFIG, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(FIX, n)) for n, *_ in FIXTURES)
    print(f"wrote {len(FIXTURES)} fixtures in {FIX}: {total} bytes")


def pillow13_vertical_first(w, h, dw, dh):
    """Pillow >= 13 runs the vertical pass first when the height loses more
    than twice as many pixels as the width; earlier versions never do."""
    return dw != w and dh != h and h - dh > 0 and h - dh > 2 * (w - dw)


def horizontal_first(pil_image, size, resample):
    """Image.resize as Pillow <= 12 computes it (horizontal pass, then
    vertical), from two single-axis resizes, which every version computes alike."""
    w, h = pil_image.size
    return pil_image.resize((size[0], h), resample=resample).resize(size, resample=resample)


def official_read(path):
    """What avss/dataset.py does to a frame before the processor."""
    image = cv2.imread(path)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image.transpose(2, 0, 1)


def main():
    if "--fixtures" in sys.argv:
        write_fixtures()
    from transformers import Mask2FormerImageProcessor

    proc = Mask2FormerImageProcessor.from_dict(dict(OFFICIAL_CONFIG))
    tensors, meta = {}, {}
    chw_list = []
    for name, *_ in FIXTURES:
        stem = os.path.splitext(name)[0]
        chw = official_read(os.path.join(FIX, name))
        chw_list.append(chw)
        hwc = np.ascontiguousarray(chw.transpose(1, 2, 0))
        h, w = hwc.shape[:2]
        meta[stem + ".rgb_sha256"] = sha256(hwc.tobytes())
        meta[stem + ".shape"] = f"{h}x{w}"
        tensors[stem + ".rgb_rows"] = np.ascontiguousarray(hwc[[0, h // 2, h - 1]])
        # the processor's own resize stage: uint8 CHW
        resized = proc.resize(chw, size=proc.size, size_divisor=proc.size_divisor, resample=proc.resample)
        assert resized.dtype == np.uint8 and resized.shape == (3, 384, 384), (resized.dtype, resized.shape)
        rhwc = np.ascontiguousarray(resized.transpose(1, 2, 0))
        meta[stem + ".resized_sha256"] = sha256(rhwc.tobytes())
        tensors[stem + ".resized_rows"] = np.ascontiguousarray(rhwc[[0, 192, 383]])
        # the same resize as Pillow <= 12 (the official environment) does it
        old = np.asarray(horizontal_first(Image.fromarray(hwc), (384, 384), Image.BILINEAR))
        meta[stem + ".resized_hfirst_sha256"] = sha256(np.ascontiguousarray(old).tobytes())
        if stem in EXTRA_STEMS:
            pil = Image.fromarray(hwc)
            for fname, fconst in EXTRA_FILTERS:
                for (ow, oh) in EXTRA_SIZES:
                    out = np.asarray(pil.resize((ow, oh), resample=fconst))
                    meta[f"{stem}.{fname}_{ow}x{oh}_sha256"] = sha256(np.ascontiguousarray(out).tobytes())
                    if pillow13_vertical_first(w, h, ow, oh):
                        old = np.asarray(horizontal_first(pil, (ow, oh), fconst))
                        meta[f"{stem}.{fname}_{ow}x{oh}_hfirst_sha256"] = sha256(np.ascontiguousarray(old).tobytes())
    # the official call: the whole list at once, as avss/dataset.py does
    pv = proc.preprocess(chw_list, return_tensors="np")["pixel_values"]
    assert pv.dtype == np.float32 and pv.shape == (len(FIXTURES), 3, 384, 384), (pv.dtype, pv.shape)
    for k, (name, *_) in enumerate(FIXTURES):
        stem = os.path.splitext(name)[0]
        one = np.ascontiguousarray(pv[k])
        meta[stem + ".pixel_sha256"] = sha256(one.tobytes())
        tensors[stem + ".pixel_row"] = np.ascontiguousarray(one[:, 300, :])
    # every uint8 value of every channel through the processor (384x384 input:
    # PIL's resize to the same size is a copy)
    yy, xx = np.mgrid[0:384, 0:384]
    probe = np.stack([(xx + 3 * yy + 7 * c) % 256 for c in range(3)]).astype(np.uint8)
    out = proc.preprocess([probe], return_tensors="np")["pixel_values"][0]
    table = np.zeros((3, 256), np.float32)
    for c in range(3):
        for v in range(256):
            vals = np.unique(out[c][probe[c] == v])
            assert len(vals) == 1, (c, v, vals)
            table[c, v] = vals[0]
    tensors["norm_table"] = table
    meta["opencv"] = cv2.__version__
    import PIL
    meta["pillow"] = PIL.__version__
    # the pass order of this Pillow (see pil_resample.h)
    meta["pillow_pass_order"] = "pillow13" if int(PIL.__version__.split(".")[0]) >= 13 else "horizontal_first"
    import transformers
    meta["transformers"] = transformers.__version__
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {OUT}: {len(tensors)} tensors, {len(meta)} metadata entries, {os.path.getsize(OUT)} bytes")

    # OpenCV on a truncated JPEG: a partly decoded image (grey below the cut)
    # and a warning, which the C reader refuses as an error instead.
    data = open(os.path.join(FIX, FIXTURES[0][0]), "rb").read()
    tmp = "/tmp/frames_ref_truncated.jpg"
    with open(tmp, "wb") as f:
        f.write(data[: len(data) // 2])
    part = cv2.imread(tmp)
    os.remove(tmp)
    print("cv2 on a truncated JPEG:", None if part is None else part.shape, "(partly decoded)")


if __name__ == "__main__":
    main()
