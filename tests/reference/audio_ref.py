"""Reference values for tests/test_audio.c: the official VGGish path in Python.

Run from the repository root:
  python3 tests/reference/audio_ref.py                  # expected values from the committed fixtures
  python3 tests/reference/audio_ref.py --make-fixtures  # first remake tests/fixtures/audio (needs espeak-ng)
  python3 tests/reference/audio_ref.py --full DIR       # real-size VGGish check, not in CI (below)
Needs: torch, numpy, scipy, soundfile, resampy (pip; 0.4.x), torchvggish (pip 0.2,
whose mel_features.py and vggish_input.py are identical to harritaylor/torchvggish's),
safetensors; espeak-ng for --make-fixtures.

The official path (AAVS's loader calls towhee's audio_decode.ffmpeg then
audio_embedding.vggish): samples in the file's own format (16-bit: int16 / 32768),
the channel mean in float64, resampy.resample(kaiser_best) to 16 kHz when the rate
differs, torchvggish's waveform_to_examples (float64 log-mel, then float32), and
torchvggish's VGG in float32 with towhee's change (no ReLU after the last layer, no
PCA); its variants (final ReLU; Postprocessor PCA + quantization) too.

The committed network is VGGish with reduced widths (WIDTHS, LINEARS) and seeded
random weights, so the weights file stays small; the C code reads its sizes from
the weights. --full DIR writes real-size random weights as torchvggish .pth files,
converts them with tools/convert_vggish.py and writes DIR/vggish_full_ref.safetensors;
then STEPSTONE_VGGISH_FULL=DIR build/tests/test_audio checks the real dims too.

Writes tests/reference/audio_ref.safetensors (expected values) and
tests/reference/vggish_tiny.safetensors (the reduced network's weights).
Doubles are stored as two float32 (hi + lo, ~48 bits): safetensors in C reads no F64.
"""
import argparse
import os
import subprocess
import sys

import numba
import numpy as np
import resampy
import scipy.signal
import soundfile as sf
import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchvggish import vggish_input
from torchvggish.torchvggish import VGG, Postprocessor

FIXTURES = "tests/fixtures/audio"
OUT = "tests/reference/audio_ref.safetensors"
WEIGHTS = "tests/reference/vggish_tiny.safetensors"
WIDTHS = [4, 8, 16, 16, 32, 32]      # real VGGish: 64, 128, 256, 256, 512, 512
LINEARS = [64, 64, 128]              # real VGGish: 4096, 4096, 128
REAL_WIDTHS = [64, 128, 256, 256, 512, 512]
REAL_LINEARS = [4096, 4096, 128]

# clip name -> file; every clip is checked end to end
CLIPS = {
    "speech16k_mono": "speech16k_mono.wav",      # 16 kHz: no resampling
    "speech44k_stereo": "speech44k_stereo.wav",  # 44.1 kHz stereo: channel mean, downsampling
    "speech10s": "speech10s.wav",                # 10.3 s at 16 kHz: 10 examples
    "tone8k_flac": "tone8k.flac",                # 8 kHz FLAC: upsampling (filter not scaled)
}


# ---------------------------------------------------------------- fixtures
def espeak(text, speed=150, pitch=50):
    path = "/tmp/stepstone_espeak.wav"
    subprocess.run(["espeak-ng", "-s", str(speed), "-p", str(pitch), "-w", path, text], check=True)
    x, sr = sf.read(path, dtype="float64")
    assert sr == 22050, sr
    return x


def to_rate(x, sr):
    """22.05 kHz speech to sr (any good resampler will do: this only makes test audio)."""
    from fractions import Fraction
    f = Fraction(sr, 22050)
    return scipy.signal.resample_poly(x, f.numerator, f.denominator)


def fit(x, n):
    return np.concatenate([x, np.zeros(max(0, n - len(x)))])[:n]


def tones(n, sr, freqs, amp):
    t = np.arange(n) / sr
    return sum(a * np.sin(2 * np.pi * f * t + k) for k, (f, a) in enumerate(zip(freqs, amp)))


def chirp(n, sr, f0, f1, amp):
    t = np.arange(n) / sr
    return amp * scipy.signal.chirp(t, f0, t[-1], f1)


def to_int16(x, rng):
    x = x / np.max(np.abs(x)) * 0.9 + rng.normal(0, 1e-4, x.shape)
    return np.round(x * 32767).astype(np.int16)


def make_fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    rng = np.random.default_rng(20240611)
    fox = espeak("The quick brown fox jumps over the lazy dog.")
    talk = espeak("Audio visual segmentation finds the objects that make the sounds you hear. "
                  "A violin plays, a dog barks, and a man speaks over the noise of the street.",
                  speed=140, pitch=40)

    # 16 kHz mono, 1.6 s: one example
    n = int(1.6 * 16000)
    x = fit(to_rate(fox, 16000), n) + tones(n, 16000, [440, 1250], [0.15, 0.08])
    sf.write(f"{FIXTURES}/speech16k_mono.wav", to_int16(x, rng), 16000, subtype="PCM_16")

    # 44.1 kHz stereo, 2.0 s: two examples; the channels differ, and a 7 kHz tone
    # reaches the top mel band where resamplers differ most
    n = int(2.0 * 44100)
    s = fit(to_rate(fox, 44100), n)
    left = s + tones(n, 44100, [660, 7000], [0.1, 0.05])
    right = 0.7 * s + tones(n, 44100, [3000], [0.1]) + chirp(n, 44100, 200, 7800, 0.05)
    peak = max(np.abs(left).max(), np.abs(right).max())
    st = np.stack([left, right], axis=1) / peak
    sf.write(f"{FIXTURES}/speech44k_stereo.wav", to_int16(st, rng), 44100, subtype="PCM_16")

    # 10.3 s at 16 kHz mono: ten examples and a dropped remainder
    n = int(10.3 * 16000)
    x = fit(to_rate(talk, 16000), n) + tones(n, 16000, [220, 880, 5000], [0.05, 0.05, 0.02]) \
        + chirp(n, 16000, 100, 7900, 0.03)
    sf.write(f"{FIXTURES}/speech10s.wav", to_int16(x, rng), 16000, subtype="PCM_16")

    # 8 kHz mono FLAC, 1.5 s
    n = int(1.5 * 8000)
    x = fit(to_rate(fox, 8000), n) + tones(n, 8000, [300, 2500], [0.2, 0.05])
    sf.write(f"{FIXTURES}/tone8k.flac", to_int16(x, rng), 8000, subtype="PCM_16", format="FLAC")

    # bad inputs: too short for one example (0.5 s), a WAV with no samples, not audio
    n = 8000
    sf.write(f"{FIXTURES}/short.wav", to_int16(to_rate(fox, 16000)[:n] + 1e-3, rng), 16000, subtype="PCM_16")
    sf.write(f"{FIXTURES}/empty.wav", np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    with open(f"{FIXTURES}/not_audio.wav", "w") as f:
        f.write("This is a text file with a .wav name, not audio.\n" * 4)
    total = sum(os.path.getsize(os.path.join(FIXTURES, p)) for p in os.listdir(FIXTURES))
    print(f"wrote {FIXTURES}: {total / 1e6:.2f} MB")


# ---------------------------------------------------------------- the official path
def read_like_towhee(path):
    """Samples in the file's format: every fixture is 16-bit, so int16 / 32768
    (torchvggish's wavfile_to_examples does the same)."""
    data, sr = sf.read(path, dtype="int16")
    return data / 32768.0, sr


def mono_and_resample(data, sr):
    """waveform_to_examples' first two steps, kept to check the C code's intermediates."""
    if data.ndim > 1:
        data = np.mean(data, axis=1)
    if sr != 16000:
        data = resampy.resample(data, sr, 16000)
    return data


@numba.jit(nopython=True, nogil=True)
def resample_v02_loop(x, y, sample_ratio, interp_win, interp_delta, num_table):
    """resampy 0.2.2's interpn.resample_f (one channel): the time register is
    advanced by repeated addition."""
    scale = min(1.0, sample_ratio)
    time_increment = 1. / sample_ratio
    index_step = int(scale * num_table)
    time_register = 0.0
    nwin = interp_win.shape[0]
    n_orig = x.shape[0]
    for t in range(y.shape[0]):
        n = int(time_register)
        frac = scale * (time_register - n)
        index_frac = frac * num_table
        offset = int(index_frac)
        eta = index_frac - offset
        i_max = min(n + 1, (nwin - offset) // index_step)
        for i in range(i_max):
            weight = (interp_win[offset + i * index_step] + eta * interp_delta[offset + i * index_step])
            y[t] += weight * x[n - i]
        frac = scale - frac
        index_frac = frac * num_table
        offset = int(index_frac)
        eta = index_frac - offset
        k_max = min(n_orig - n - 1, (nwin - offset) // index_step)
        for k in range(k_max):
            weight = (interp_win[offset + k * index_step] + eta * interp_delta[offset + k * index_step])
            y[t] += weight * x[n + k + 1]
        time_register += time_increment


def kaiser_table(num_zeros, precision, rolloff, beta):
    win, _, _ = resampy.filters.sinc_window(num_zeros=num_zeros, precision=precision, rolloff=rolloff,
                                            window=lambda m: scipy.signal.windows.kaiser(m, beta))
    return win


V02 = dict(num_zeros=64, precision=9, rolloff=0.9475937167399596, beta=14.769656459379492)
V04 = dict(num_zeros=50, precision=13, rolloff=0.9173473712608761, beta=12.98458524704)


def resample_v02(x, sr_orig, sr_new):
    """resampy 0.2.2's resample for 1-D x (its core.resample, transcribed)."""
    sample_ratio = float(sr_new) / sr_orig
    y = np.zeros(int(x.shape[0] * sample_ratio))
    win = kaiser_table(**V02)
    if sample_ratio < 1:
        win = win * sample_ratio
    delta = np.zeros_like(win)
    delta[:-1] = np.diff(win)
    resample_v02_loop(x, y, sample_ratio, win, delta, 2 ** V02["precision"])
    return y


def check_tables(npz_v02):
    """The C code regenerates the tables from these parameters: check that the
    definition reproduces the table the pip package ships (and resampy 0.2.2's,
    when its npz is given: it is not in today's package)."""
    shipped, precision, rolloff = resampy.filters.load_filter("kaiser_best")
    assert int(precision) == 2 ** V04["precision"] and float(rolloff) == V04["rolloff"]
    made = kaiser_table(**V04)
    print(f"kaiser_best (resampy {resampy.__version__}): {len(shipped)} entries, regenerated max |diff| "
          f"{np.abs(made - shipped).max():.3g}")
    assert np.abs(made - shipped).max() < 1e-14
    if npz_v02:
        old = np.load(npz_v02)["half_window"]
        print(f"kaiser_best (resampy 0.2.2): regenerated max |diff| {np.abs(kaiser_table(**V02) - old).max():.3g}")
    return shipped


# ---------------------------------------------------------------- the network
def make_features(widths):
    """torchvggish's make_layers with the given widths."""
    layers, c = [], 1
    for v in [widths[0], "M", widths[1], "M", widths[2], widths[3], "M", widths[4], widths[5], "M"]:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


def make_vgg(widths, linears, final_relu):
    """torchvggish's VGG (its forward: features, the two transposes, embeddings)
    with the given sizes; towhee's has no ReLU after the last linear layer."""
    vgg = VGG(make_features(widths), postprocess=False)
    mods = [nn.Linear(widths[-1] * 6 * 4, linears[0]), nn.ReLU(True), nn.Linear(linears[0], linears[1]),
            nn.ReLU(True), nn.Linear(linears[1], linears[2])]
    if final_relu:
        mods.append(nn.ReLU(True))
    vgg.embeddings = nn.Sequential(*mods)
    return vgg.eval()


def random_state(widths, linears, seed):
    """He-scaled random weights under torchvggish's state-dict names."""
    g = torch.Generator().manual_seed(seed)
    net = make_vgg(widths, linears, final_relu=False)
    state = {}
    for name, p in net.state_dict().items():
        if name.endswith("weight"):
            fan_in = p[0].numel()
            state[name] = torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:
            state[name] = torch.randn(p.shape, generator=g) * 0.1
    return state


def make_pca(emb, seed):
    """PCA params that spread these embeddings over the quantizer's range."""
    g = torch.Generator().manual_seed(seed)
    e = emb.shape[1]
    q, _ = torch.linalg.qr(torch.randn(e, e, generator=g, dtype=torch.float64))
    means = emb.double().mean(0)
    spread = (emb.double() - means).std() + 1e-6
    return (q / spread).float(), means.float().reshape(-1, 1)


def postprocess(emb, vectors, means):
    """torchvggish's Postprocessor.postprocess, with its params set directly
    (its constructor downloads the real ones). Also returns the values before
    rounding, so the test can allow a flip where they sit on a .5 boundary."""
    pp = Postprocessor.__new__(Postprocessor)
    pp._pca_matrix, pp._pca_means = vectors, means
    raw = (torch.clamp(torch.mm(vectors, (emb.t() - means)).t(), -2.0, 2.0) - -2.0) * (255.0 / (2.0 - -2.0))
    return pp.postprocess(emb).reshape(emb.shape), raw


def run_clip(path, nets, tensors, key, want_resampled):
    data, sr = read_like_towhee(path)
    wave = mono_and_resample(data, sr)
    examples = vggish_input.waveform_to_examples(data, sr).detach()
    if want_resampled and sr != 16000:
        split(tensors, f"{key}.resampled", wave)
    tensors[f"{key}.log_mel"] = examples.contiguous()
    out = {}
    with torch.no_grad():
        for name, net in nets.items():
            out[name] = net(examples)
            tensors[f"{key}.{name}"] = out[name].contiguous()
    return data, sr, examples, out


def split(tensors, name, x):
    hi = x.astype(np.float32)
    lo = (x - hi.astype(np.float64)).astype(np.float32)
    tensors[name + ".hi"] = torch.from_numpy(hi.copy())
    tensors[name + ".lo"] = torch.from_numpy(lo.copy())


def reference(npz_v02):
    shipped = check_tables(npz_v02)
    tensors, meta = {}, {}
    # a sample of each table (every 97th entry and the last) for the C generator
    idx = np.append(np.arange(0, len(shipped), 97), len(shipped) - 1)
    tensors["filter.v04.index"] = torch.from_numpy(idx.astype(np.int64))
    split(tensors, "filter.v04", shipped[idx])
    v02 = kaiser_table(**V02)
    idx = np.append(np.arange(0, len(v02), 7), len(v02) - 1)
    tensors["filter.v02.index"] = torch.from_numpy(idx.astype(np.int64))
    split(tensors, "filter.v02", v02[idx])

    state = random_state(WIDTHS, LINEARS, seed=7)
    towhee = make_vgg(WIDTHS, LINEARS, final_relu=False)
    towhee.load_state_dict(state)
    relu = make_vgg(WIDTHS, LINEARS, final_relu=True)
    relu.load_state_dict(state)
    nets = {"embeddings": towhee, "embeddings_relu": relu}

    results = {}
    for key, fname in CLIPS.items():
        results[key] = run_clip(f"{FIXTURES}/{fname}", nets, tensors, f"clip.{key}", want_resampled=True)
        meta[f"clip.{key}"] = fname
        t = results[key][2].shape[0]
        print(f"{key}: {results[key][1]} Hz, {t} examples, |emb| max {results[key][3]['embeddings'].abs().max():.3f}")

    # resampy 0.2.2 on the stereo clip (its first 8000 output samples)
    data, sr = results["speech44k_stereo"][:2]
    split(tensors, "clip.speech44k_stereo.resampled_v02", resample_v02(np.mean(data, axis=1), sr, 16000)[:8000])

    # torchvggish's Postprocessor, fitted to the final-ReLU embeddings of every clip
    allemb = torch.cat([r[3]["embeddings_relu"] for r in results.values()])
    vectors, means = make_pca(allemb, seed=8)
    for key, r in results.items():
        q, raw = postprocess(r[3]["embeddings_relu"], vectors, means)
        tensors[f"clip.{key}.embeddings_pca"] = q.contiguous()
        tensors[f"clip.{key}.pca_raw"] = raw.contiguous()
    state["pproc.pca_eigen_vectors"] = vectors
    state["pproc.pca_means"] = means

    save_file({k: v.contiguous() for k, v in state.items()}, WEIGHTS, metadata={"widths": str(WIDTHS),
                                                                                "linears": str(LINEARS)})
    meta["resampy"] = resampy.__version__
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1e3:.0f} kB) and {WEIGHTS} ({os.path.getsize(WEIGHTS) / 1e3:.0f} kB)")


def full(outdir):
    """Real-size VGGish with random weights, as torchvggish's two .pth files,
    converted by tools/convert_vggish.py (so the converter is checked too)."""
    os.makedirs(outdir, exist_ok=True)
    state = random_state(REAL_WIDTHS, REAL_LINEARS, seed=9)
    towhee = make_vgg(REAL_WIDTHS, REAL_LINEARS, final_relu=False)
    towhee.load_state_dict(state)
    relu = make_vgg(REAL_WIDTHS, REAL_LINEARS, final_relu=True)
    relu.load_state_dict(state)
    tensors = {}
    embs = []
    for key in ["speech10s", "speech44k_stereo"]:
        _, _, _, out = run_clip(f"{FIXTURES}/{CLIPS[key]}", {"embeddings": towhee, "embeddings_relu": relu},
                                tensors, f"clip.{key}", want_resampled=False)
        embs.append(out["embeddings_relu"])
    vectors, means = make_pca(torch.cat(embs), seed=10)
    for key in ["speech10s", "speech44k_stereo"]:
        q, raw = postprocess(tensors[f"clip.{key}.embeddings_relu"], vectors, means)
        tensors[f"clip.{key}.embeddings_pca"] = q.contiguous()
        tensors[f"clip.{key}.pca_raw"] = raw.contiguous()
    # the torchvggish release files: the network's state dict, and the PCA params
    # as numpy arrays (means [128], as the released file stores them)
    torch.save(state, f"{outdir}/vggish-random.pth")
    torch.save({"pca_eigen_vectors": vectors.numpy().astype(np.float64),
                "pca_means": means.reshape(-1).numpy().astype(np.float64)}, f"{outdir}/vggish_pca-random.pth")
    subprocess.run([sys.executable, "tools/convert_vggish.py", f"{outdir}/vggish-random.pth",
                    "--pca", f"{outdir}/vggish_pca-random.pth", "-o", f"{outdir}/vggish_full.safetensors"], check=True)
    save_file(tensors, f"{outdir}/vggish_full_ref.safetensors")
    print(f"wrote {outdir}/vggish_full.safetensors and {outdir}/vggish_full_ref.safetensors")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make-fixtures", action="store_true", help="remake tests/fixtures/audio first")
    ap.add_argument("--full", metavar="DIR", help="write the real-size check to DIR instead")
    ap.add_argument("--resampy02-npz", metavar="NPZ", help="resampy 0.2.2's kaiser_best.npz, to check V02's table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.make_fixtures:
        make_fixtures()
    if args.full:
        full(args.full)
    else:
        reference(args.resampy02_npz)
