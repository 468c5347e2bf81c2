#!/usr/bin/python3
"""Moving models between advaug and PyTorch: a tutorial and a tool (see docs/model_files.md).

An advaug model file is an .npz (numpy.savez) whose array names are exactly the state_dict
keys of the same torch.nn.Sequential, in PyTorch's layouts, plus metadata arrays
"__advaug__.<key>" that hold UTF-8 text as 1-D uint8 arrays. So the translation is short:
a dictionary of arrays on both sides, and one buffer (num_batches_tracked) that advaug does
not store.

  # PyTorch -> advaug: a torch model (seed 5) as a file that advaug::io::load_model reads
  GOMP_SPINCOUNT=0 /usr/bin/python3 examples/pytorch_interop.py export --arch cnn --out cnn.npz --seed 5

  # advaug -> PyTorch: a file of advaug::io::save_model loaded into torch, strictly
  GOMP_SPINCOUNT=0 /usr/bin/python3 examples/pytorch_interop.py import cnn.npz --arch cnn

  # both sides agree? torch's logits and FGSM examples for inputs and labels in .npy files
  GOMP_SPINCOUNT=0 /usr/bin/python3 examples/pytorch_interop.py check --arch cnn --model cnn.npz \
      --inputs x.npy --labels y.npy --eps 0.1 --logits logits.npy --fgsm fgsm.npy

The functions save_advaug() and load_advaug() work for any torch.nn.Sequential whose layers
advaug has too; import this file to use them on your own (trained) networks. The three
architectures below are advaug's bundled mlp<T>({784, 256, 256, 10}) and cnn<T>(seed, init,
batch_norm); tests/test_pytorch_interop.cpp runs this script against them.
"""
import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F

# Names of metadata arrays start with this; everything else is a state_dict entry.
METADATA_PREFIX = "__advaug__."

# advaug's model.describe() for each architecture, stored as "__advaug__.architecture".
# advaug::io::load_model refuses a file whose architecture differs from its model's, so these
# strings must match the C++ side character for character (the test checks that they do).
_CONV1 = "conv2d(1->32, 3x3, stride 1, padding 1)"
_CONV2 = "conv2d(32->64, 3x3, stride 1, padding 1)"
_POOL = "max_pool2d(2x2, stride 2)"
ARCHITECTURES = {
    "mlp": "sequential [784] -> dense(784->256) -> relu -> dense(256->256) -> relu -> dense(256->10)",
    "cnn": f"sequential [1, 28, 28] -> {_CONV1} -> relu -> {_POOL} -> {_CONV2} -> relu -> {_POOL}"
           " -> flatten -> dense(3136->128) -> relu -> dense(128->10)",
    "cnn-bn": f"sequential [1, 28, 28] -> {_CONV1} -> batch_norm2d(32) -> relu -> {_POOL} -> {_CONV2}"
              f" -> batch_norm2d(64) -> relu -> {_POOL} -> flatten -> dense(3136->128) -> relu -> dense(128->10)",
}

# Shape of one input sample: advaug's mlp takes [N, 784], its cnn NCHW [N, 1, 28, 28].
SAMPLE_SHAPES = {"mlp": (784,), "cnn": (1, 28, 28), "cnn-bn": (1, 28, 28)}


def build(arch):
    """The torch.nn.Sequential that is the same network as advaug's model `arch`.

    Layer indices matter: they are the first part of every state_dict key ("0.weight"), and
    advaug counts layers the same way, parameter-free ones (ReLU, pooling, flatten) included.
    """
    nn = torch.nn
    if arch == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    bn = arch == "cnn-bn"
    layers = [nn.Conv2d(1, 32, 3, padding=1)]
    layers += [nn.BatchNorm2d(32)] if bn else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1)]
    layers += [nn.BatchNorm2d(64)] if bn else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10)]
    return nn.Sequential(*layers)


def fail(message):
    """Stops with `message` on stderr and exit status 1 (what the C++ test looks for)."""
    print(f"pytorch_interop.py: {message}", file=sys.stderr)
    sys.exit(1)


def _is_advaug_free(key):
    # num_batches_tracked counts training steps; it changes no output (momentum is set), so
    # advaug keeps it out of its files and refuses it as an unexpected array.
    return key.endswith(".num_batches_tracked")


def save_advaug(net, architecture, path):
    """Writes `net`'s state_dict as an advaug model file.

    `architecture` is advaug's describe() string of the same network. Arrays keep PyTorch's
    layouts (Linear [out, in], Conv2d [out, in, kh, kw]) and dtype (float32 for a float
    model, which advaug::io::load_model needs for a model<float>).
    """
    arrays = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items() if not _is_advaug_free(k)}
    arrays[METADATA_PREFIX + "architecture"] = np.frombuffer(architecture.encode("utf-8"), dtype=np.uint8)
    # A file object, because numpy.savez appends ".npz" to a file name that lacks it.
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def read_advaug(path):
    """The arrays of an advaug model file and its metadata (text), as two dictionaries."""
    arrays, metadata = {}, {}
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            value = archive[name]
            if name.startswith(METADATA_PREFIX):
                if value.dtype != np.uint8 or value.ndim != 1:
                    fail(f"'{path}' metadata array '{name}' has dtype {value.dtype} and shape "
                         f"{list(value.shape)}, expected a 1-D uint8 array")
                metadata[name[len(METADATA_PREFIX):]] = value.tobytes().decode("utf-8")
            else:
                arrays[name] = value
    return arrays, metadata


def load_advaug(net, path, architecture=None):
    """Loads an advaug model file into `net`, as strictly as advaug::io::load_model does.

    Every state_dict entry but num_batches_tracked must be in the file with its shape, no
    other array may be, all arrays must share one float dtype (net is converted to it), and
    a stored architecture must equal `architecture` when that is given. num_batches_tracked
    is set to 0. Returns the number of trainable parameters.
    """
    arrays, metadata = read_advaug(path)
    stored = metadata.get("architecture")
    if architecture is not None and stored is not None and stored != architecture:
        fail(f"'{path}' holds the architecture '{stored}', the model is '{architecture}'")
    expected = {k: v for k, v in net.state_dict().items() if not _is_advaug_free(k)}
    missing = [k for k in expected if k not in arrays]
    unexpected = [k for k in arrays if k not in expected]
    if missing:
        fail(f"'{path}' is missing array '{missing[0]}'")
    if unexpected:
        fail(f"'{path}' has an unexpected array '{unexpected[0]}'")
    dtypes = {v.dtype for v in arrays.values()}
    if dtypes != {np.dtype(np.float32)} and dtypes != {np.dtype(np.float64)}:
        fail(f"'{path}' arrays have dtypes {sorted(str(d) for d in dtypes)}, expected all float32 or all float64")
    for k, v in expected.items():
        if list(arrays[k].shape) != list(v.shape):
            fail(f"'{path}' array '{k}' has shape {list(arrays[k].shape)}, the model expects {list(v.shape)}")

    net.to(torch.float64 if dtypes == {np.dtype(np.float64)} else torch.float32)
    state = {k: torch.from_numpy(arrays[k]) for k in expected}
    for k, v in net.state_dict().items():
        if _is_advaug_free(k):
            state[k] = torch.zeros_like(v)
    net.load_state_dict(state, strict=True)  # every key, nothing else: checked twice
    return sum(p.numel() for p in net.parameters())


def load_inputs(arch, inputs_path, labels_path, dtype):
    """Inputs [N, ...sample shape] in [0, 1] and int64 labels [N] from .npy files."""
    x = np.load(inputs_path, allow_pickle=False)
    y = np.load(labels_path, allow_pickle=False)
    shape = SAMPLE_SHAPES[arch]
    if x.ndim != 1 + len(shape) or tuple(x.shape[1:]) != shape or x.shape[0] == 0:
        fail(f"'{inputs_path}' has shape {list(x.shape)}, {arch} expects [N >= 1, {', '.join(map(str, shape))}]")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        fail(f"'{labels_path}' has shape {list(y.shape)} and dtype {y.dtype}, expected {x.shape[0]} integers")
    if x.min() < 0 or x.max() > 1:
        fail(f"'{inputs_path}' has values outside [0, 1]")
    return torch.from_numpy(x).to(dtype), torch.from_numpy(y.astype(np.int64))


def fgsm(net, x, y, eps):
    """x' = clamp(x + eps * sign(grad_x CE(net(x), y)), 0, 1), CE averaged over the batch.

    torch.autograd.grad computes only the input gradient: the parameters' .grad stay
    untouched, as advaug's attacks leave the model's parameter gradients alone.
    """
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(net(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def save_npy(path, array):
    with open(path, "wb") as f:  # numpy.save appends ".npy" to a file name that lacks it
        np.save(f, array)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    archs = sorted(ARCHITECTURES)

    e = sub.add_parser("export", help="write a freshly initialized torch model as an advaug file")
    e.add_argument("--arch", required=True, choices=archs)
    e.add_argument("--out", required=True)
    e.add_argument("--seed", type=int, default=0)

    i = sub.add_parser("import", help="load an advaug file into the torch model, strictly")
    i.add_argument("file")
    i.add_argument("--arch", required=True, choices=archs)

    c = sub.add_parser("check", help="torch's logits and FGSM examples of an advaug file")
    c.add_argument("--arch", required=True, choices=archs)
    c.add_argument("--model", required=True)
    c.add_argument("--inputs", required=True, help=".npy, float, [N, 784] (mlp) or [N, 1, 28, 28] (cnn)")
    c.add_argument("--labels", required=True, help=".npy, integer, [N]")
    c.add_argument("--eps", type=float, required=True)
    c.add_argument("--logits", required=True, help="output .npy, [N, 10]")
    c.add_argument("--fgsm", required=True, help="output .npy, the inputs' shape")
    a = p.parse_args()
    torch.set_num_threads(2)

    if a.command == "export":
        torch.manual_seed(a.seed)
        net = build(a.arch)
        save_advaug(net, ARCHITECTURES[a.arch], a.out)
        count = sum(p.numel() for p in net.parameters())
        print(f"wrote {a.out}: {a.arch}, seed {a.seed}, {count} parameters")
    elif a.command == "import":
        net = build(a.arch)
        count = load_advaug(net, a.file, ARCHITECTURES[a.arch])
        print(f"loaded {a.file} into torch: {a.arch}, {count} parameters")
    else:
        if not np.isfinite(a.eps) or a.eps < 0:
            fail(f"--eps must be finite and >= 0, got {a.eps}")
        net = build(a.arch)
        load_advaug(net, a.model, ARCHITECTURES[a.arch])
        net.eval()  # batch norm uses its running statistics, as advaug's mode::eval does
        dtype = next(net.parameters()).dtype
        x, y = load_inputs(a.arch, a.inputs, a.labels, dtype)
        if y.min() < 0 or y.max() >= 10:
            fail(f"'{a.labels}' has labels outside [0, 10)")
        with torch.no_grad():
            logits = net(x)
        save_npy(a.logits, logits.numpy())
        save_npy(a.fgsm, fgsm(net, x, y, a.eps).numpy())
        print(f"checked {a.model} ({a.arch}) on {len(x)} inputs: wrote {a.logits} and {a.fgsm}")


if __name__ == "__main__":
    main()
