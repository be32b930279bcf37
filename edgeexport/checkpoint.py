"""model.pth: ``{"model": torchvision SSD state_dict, "meta": ModelMeta dict, ...train state}``.

Saved atomically; loaded only with ``weights_only=True`` so that a pickle carrying code is refused, never run.
Host-side only.
"""
import argparse
import io
import os
import pickle
import zipfile

import torch

from .errors import CheckpointError, InputFileError
from .fileio import atomic_write_with
from .meta import ARCHS, ModelMeta
from .models import build_ssdlite, head_num_classes


def save_checkpoint(path, model, meta, **extra):
    """Write ``{"model", "meta", **extra}`` to ``path`` through a temporary file and a rename."""
    state = model.module.state_dict() if hasattr(model, "module") else model.state_dict()
    payload = dict(extra)
    payload["model"] = state
    payload["meta"] = meta.to_dict()
    atomic_write_with(path, lambda f: torch.save(payload, f))


def read_checkpoint(path):
    """torch.load with weights_only=True and every failure mapped to one CheckpointError line.

    ``argparse.Namespace`` is allowed because torchvision's detection reference scripts store their ``args`` in
    the checkpoint; it is plain data. Anything else that is not tensors and containers is refused.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputFileError("model file not found: expected a .pth file at {}, got nothing there".format(path))
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        culprit = [line.strip() for line in text.splitlines() if "Unsupported global" in line
                   or "Unsupported operand" in line]
        if culprit or "weights_only" in text.lower() or "Weights only" in text:
            what = culprit[0].split(" was not")[0].replace("WeightsUnpickler error: ", "") if culprit else first
            raise CheckpointError(
                "{} holds Python objects, not only tensors ({}); refusing to unpickle it. Save plain data: "
                "torch.save({{'model': model.state_dict(), 'meta': ...}})".format(path, what[:160]))
        raise CheckpointError("{} is corrupt or not a PyTorch file ({})".format(path, first[:160]))
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, AttributeError, io.UnsupportedOperation,
            IndexError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError("{} is corrupt or not a PyTorch checkpoint ({}: {})".format(
            path, type(e).__name__, first[:160]))
    return obj


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


def load_model(path, labels=None, image_mean=None, image_std=None, arch=None, input_size=None):
    """Load model.pth into a torchvision SSD in eval mode. Returns ``(model, ModelMeta, raw_checkpoint)``.

    A checkpoint without ``meta`` (torchvision's reference scripts) needs ``labels`` and ``arch``;
    mean/std then default to torchvision's SSDLite values (0.5, 0.5) unless given.
    Flags given for a checkpoint that has ``meta`` override it (and are checked against the head).
    """
    obj = read_checkpoint(path)
    state_dict = _as_state_dict(obj, path)
    stored = obj.get("meta") if isinstance(obj, dict) else None
    if stored is not None:
        try:
            meta = ModelMeta.from_dict(stored)
        except ValueError as e:
            raise CheckpointError("{} has unusable metadata: {}".format(path, e))
        d = meta.to_dict()
    else:
        d = {"arch": arch, "labels": labels, "image_mean": image_mean or [0.5] * 3,
             "image_std": image_std or [0.5] * 3, "input_size": input_size or [320, 320]}
        if labels is None:
            raise CheckpointError("{} has no 'meta' (a torchvision reference checkpoint?): pass --labels with the "
                                  "K class names and --arch".format(path))
    for key, value in (("labels", labels), ("image_mean", image_mean), ("image_std", image_std),
                       ("arch", arch), ("input_size", input_size)):
        if value is not None:
            d[key] = value
    if d.get("arch") is None:
        d["arch"] = _guess_arch(state_dict, d, path)
    try:
        meta = ModelMeta.from_dict(d)
    except ValueError as e:
        raise CheckpointError("{}: {}".format(path, e))

    k_head = head_num_classes(state_dict)
    if k_head is None:
        raise CheckpointError("{} is not an SSDLite checkpoint: no classification head "
                              "'head.classification_head.module_list.0.1.weight' of shape [6*(K+1), C, 1, 1]".format(path))
    if k_head != meta.num_classes:
        raise CheckpointError("{}: the head predicts {} foreground classes but {} labels were given ({}); pass the "
                              "labels the model was trained with".format(path, k_head, meta.num_classes,
                                                                         ", ".join(meta.labels[:5])))
    best = None
    for reduced_tail in (meta.reduced_tail, not meta.reduced_tail):
        d2 = meta.to_dict()
        d2["reduced_tail"] = reduced_tail
        candidate = ModelMeta.from_dict(d2)
        model, missing, unexpected = _try_load(candidate, state_dict)
        if not missing and not unexpected:
            model.load_state_dict(state_dict, strict=True)
            return model.eval(), candidate, obj
        if best is None or len(missing) + len(unexpected) < best[0]:
            best = (len(missing) + len(unexpected), missing, unexpected)
    _, missing, unexpected = best
    raise CheckpointError("{} does not match {}: {} missing and {} unexpected or mis-shaped tensors (e.g. {}); is it "
                          "another architecture? pass --arch".format(path, meta.arch, len(missing), len(unexpected),
                                                                     (missing + unexpected)[0]))


def _guess_arch(state_dict, d, path):
    for arch in ARCHS:
        d2 = dict(d, arch=arch)
        k = head_num_classes(state_dict)
        if k is None:
            break
        d2["labels"] = d2.get("labels") or ["c{}".format(i) for i in range(k)]
        for rt in (True, False):
            d2["reduced_tail"] = rt
            _, missing, unexpected = _try_load(ModelMeta.from_dict(d2), state_dict)
            if not missing and not unexpected:
                return arch
    raise CheckpointError("{}: cannot tell the architecture from the tensors; pass --arch {}".format(
        path, "|".join(ARCHS)))
