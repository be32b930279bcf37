"""model.pth: ``{"model": torchvision SSD state_dict, "meta": ModelMeta dict, ...train state}``.

Saved atomically; loaded only with ``weights_only=True`` so that a pickle carrying code is refused, never run.
Host-side only.
"""
import argparse
import os
import pickle
import zipfile

import torch

from ..device.errors import CheckpointError, InputFileError, ModelStructureError
from ..device.fileio import atomic_write_with
from ..device.meta import ARCHS, ModelMeta
from .ssdlite import build_ssdlite, head_num_classes


def save_checkpoint(path, model, meta, **extra):
    """Write ``{"model", "meta", **extra}`` to ``path`` through a temporary file and a rename."""
    state = model.module.state_dict() if hasattr(model, "module") else model.state_dict()
    payload = dict(extra)
    payload["model"] = state
    payload["meta"] = meta.to_dict()
    atomic_write_with(path, lambda f: torch.save(payload, f))


def weights_sha256(model):
    """One digest of a model's weights and buffers (name, dtype, shape and bytes of each, in name order): what
    export records in model.json so that evaluate's pytorch row can tell the bundle's own model from another."""
    import hashlib
    import torch
    state = model.module.state_dict() if hasattr(model, "module") else model.state_dict()
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update("{}|{}|{}\n".format(name, t.dtype, list(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _same_value(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    a, b = list(a), list(b)
    if len(a) != len(b):
        return False
    return all(x == y if isinstance(x, str) or isinstance(y, str) else abs(float(x) - float(y)) <= 1e-9
               for x, y in zip(a, b))


def check_bundle_model(model, bundle_meta, where):
    """``model`` must be the one the bundle was exported from (model.json's weights digest; bundles without one
    are taken on trust): a row of another model's weights would be scored as the bundle's reference."""
    want = getattr(bundle_meta, "weights_sha256", "")
    if want and weights_sha256(model) != want:
        from ..device.errors import BundleMismatchError
        raise BundleMismatchError("{} is not the model this bundle was exported from (weights sha256 {}..., "
                                  "model.json records {}...): pass the checkpoint export read".format(
                                      where, weights_sha256(model)[:12], want[:12]))


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def read_checkpoint(path):
    """The object in model.pth, read with ``torch.load(weights_only=True)``; CheckpointError for anything else.

    Reading an untrusted file catches by design: whatever is not a valid checkpoint (truncated, damaged, another
    format, a folder) is "not a checkpoint", one line naming the file. The zip's CRCs are verified first, since
    torch.load itself reads damaged tensor bytes without noticing. ``argparse.Namespace`` is allowed because
    torchvision's detection reference scripts store their ``args`` in the checkpoint; it is plain data. A pickle
    that names any other global is refused and never run.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputFileError("{} is a folder: expected a .pth checkpoint file".format(path))
    if not os.path.isfile(path):
        raise InputFileError("model file not found: expected a .pth file at {}, got nothing there".format(path))
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
            if damaged is not None:
                raise CheckpointError("{} is damaged: the zip entry {} fails its CRC check (a bad copy or a failing "
                                      "disk); copy or save the checkpoint again".format(path, damaged))
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        text = str(e)
        culprit = [line.strip() for line in text.splitlines() if "Unsupported global" in line
                   or "Unsupported operand" in line]
        if culprit or "weights_only" in text.lower() or "Weights only" in text:
            what = culprit[0].split(" was not")[0].replace("WeightsUnpickler error: ", "") if culprit else \
                _first_line(e)
            raise CheckpointError(
                "{} holds Python objects, not only tensors ({}); refusing to unpickle it. Save plain data: "
                "torch.save({{'model': model.state_dict(), 'meta': ...}})".format(path, what[:160]))
        raise CheckpointError("{} is corrupt or not a PyTorch checkpoint ({})".format(path, _first_line(e)))
    except Exception as e:  # by design: anything torch.load cannot read is not a checkpoint
        raise CheckpointError("{} is corrupt or not a PyTorch checkpoint ({}: {})".format(
            path, type(e).__name__, _first_line(e)))


def _as_state_dict(obj, path):
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        return obj["model"]
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj  # a bare state_dict
    raise CheckpointError("{} is not a detector checkpoint: expected a dict with a 'model' state_dict, got {}".format(
        path, type(obj).__name__ if not isinstance(obj, dict) else "keys {}".format(sorted(obj)[:6])))


def _try_load(meta, state_dict):
    model = build_ssdlite(meta)
    missing, unexpected = [], []
    own = model.state_dict()
    for k, v in own.items():
        if k not in state_dict:
            missing.append(k)
        elif tuple(state_dict[k].shape) != tuple(v.shape):
            unexpected.append(k)
    unexpected += [k for k in state_dict if k not in own]
    return model, missing, unexpected


def load_model(path, labels=None, image_mean=None, image_std=None, arch=None, input_size=None, override=False):
    """Load model.pth into a torchvision SSD in eval mode. Returns ``(model, ModelMeta, raw_checkpoint)``.

    A checkpoint without ``meta`` (torchvision's reference scripts) needs ``labels``; the arch is read from the
    tensors unless given, and mean/std default to torchvision's SSDLite values (0.5, 0.5).
    A checkpoint that has ``meta`` knows its own classes and normalisation: a flag that contradicts it is refused
    (it would relabel the bundle or feed the network other pixels, silently) unless ``override``; then it wins
    (and is checked against the head).
    """
    obj = read_checkpoint(path)
    state_dict = _as_state_dict(obj, path)
    stored = obj.get("meta") if isinstance(obj, dict) else None
    if stored is not None:
        try:
            d = ModelMeta.from_dict(stored).to_dict()
        except ValueError as e:
            raise CheckpointError("{} has unusable metadata: {}".format(path, e))
    else:
        if labels is None:
            raise CheckpointError("{} has no 'meta' (a torchvision reference checkpoint?): pass --labels with the "
                                  "K class names (and --arch)".format(path))
        d = {"arch": arch, "labels": labels, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
             "input_size": [320, 320]}
    given = (("labels", labels), ("image_mean", image_mean), ("image_std", image_std), ("arch", arch),
             ("input_size", input_size))
    if stored is not None and not override:
        contradicted = ["{} {} (the checkpoint says {})".format(key, value if isinstance(value, str) else list(value),
                                                                 d[key])
                        for key, value in given if value is not None and not _same_value(value, d[key])]
        if contradicted:
            raise CheckpointError("{} records its own metadata and the flags contradict it: {}; drop the flags, or "
                                  "pass --override-metadata to replace what the checkpoint says".format(
                                      path, "; ".join(contradicted)))
    for key, value in given:
        if value is not None:
            d[key] = value
    model, meta = model_from_state_dict(state_dict, d, path)
    return model, meta, obj


def model_from_state_dict(state_dict, meta_dict, where):
    """A torchvision SSD in eval mode with ``state_dict`` loaded, and its ModelMeta. ``meta_dict`` may leave
    ``arch`` and ``reduced_tail`` out: they are read from the tensors. ``where`` names the source in errors."""
    d = dict(meta_dict)
    k_head = head_num_classes(state_dict)
    if k_head is None:
        raise CheckpointError("{} is not an SSDLite checkpoint: no classification head "
                              "'head.classification_head.module_list.0.1.weight' of shape [6*(K+1), C, 1, 1]".format(
                                  where))
    if d.get("arch") is None:
        d["arch"] = _guess_arch(state_dict, d, where)
    try:
        meta = ModelMeta.from_dict(d)
    except ValueError as e:
        raise CheckpointError("{}: {}".format(where, e))
    if k_head != meta.num_classes:
        raise CheckpointError("{}: the head predicts {} foreground classes but {} labels were given ({}); pass the "
                              "labels the model was trained with".format(where, k_head, meta.num_classes,
                                                                         ", ".join(meta.labels[:5])))
    best = None
    tails = (meta.reduced_tail, not meta.reduced_tail) if "reduced_tail" in d else (True, False)
    for reduced_tail in tails:
        d2 = meta.to_dict()
        d2["reduced_tail"] = reduced_tail
        candidate = ModelMeta.from_dict(d2)
        model, missing, unexpected = _try_load(candidate, state_dict)
        if not missing and not unexpected:
            model.load_state_dict(state_dict, strict=True)
            return model.eval(), candidate
        if best is None or len(missing) + len(unexpected) < best[0]:
            best = (len(missing) + len(unexpected), missing, unexpected)
    _, missing, unexpected = best
    raise CheckpointError("{} does not match {}: {} missing and {} unexpected or mis-shaped tensors (e.g. {}); is it "
                          "another architecture? pass --arch".format(where, meta.arch, len(missing), len(unexpected),
                                                                     (missing + unexpected)[0]))


def describe_model(model, labels, preprocessing="torchvision"):
    """The ModelMeta of an in-memory torchvision SSDLite: ``labels`` (the K foreground names) from the caller;
    mean, std and input size from ``model.transform``; arch and reduced tail from its tensors."""
    transform = getattr(model, "transform", None)
    size = getattr(transform, "fixed_size", None)
    if transform is None or size is None or not hasattr(model, "head"):
        raise ModelStructureError("expected a torchvision SSD (with .transform.fixed_size and .head), got {}".format(
            type(model).__name__))
    d = {"labels": list(labels), "image_mean": list(transform.image_mean), "image_std": list(transform.image_std),
         "input_size": list(size), "preprocessing": preprocessing}
    _, meta = model_from_state_dict(model.state_dict(), d, "the model")
    return meta


def _guess_arch(state_dict, d, where):
    k = head_num_classes(state_dict)
    for arch in ARCHS:
        d2 = dict(d, arch=arch, labels=d.get("labels") or ["c{}".format(i) for i in range(k)])
        if len(d2["labels"]) != k:
            d2["labels"] = ["c{}".format(i) for i in range(k)]
        for rt in (True, False):
            d2["reduced_tail"] = rt
            _, missing, unexpected = _try_load(ModelMeta.from_dict(d2), state_dict)
            if not missing and not unexpected:
                return arch
    raise CheckpointError("{}: cannot tell the architecture from the tensors; pass --arch {}".format(
        where, "|".join(ARCHS)))
