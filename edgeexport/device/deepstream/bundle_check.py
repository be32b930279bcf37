"""The bundle checked whole, before any command uses it: ``load_bundle(path)`` -> a Bundle whose ``checked`` is the
``BundleCheck`` of ``check_bundle_whole``.

What is deployed is not model.onnx alone but model.onnx + infer_config.txt + labels.txt + the parser, and nvinfer
reads only the config. So every command that reads a bundle (parity, emulate, evaluate, build_engine,
deepstream_config, deepstream_app) runs this first:

- model.json is read with its schema (BundleMeta);
- every file export recorded (``BundleMeta.files``: graphs, labels, fixtures, validation set) has the sha256
  export wrote, so another model's ONNX copied in, or a relabelled labels.txt, is refused by name;
- infer_config.txt, read as gst-nvinfer reads it, agrees with model.json on everything that decides what the
  network is fed and how its outputs are read (offsets, scale, colour order, input size, graph, layout and
  parser, outputs, classes and their names, cluster mode, a static batch): a config that makes nvinfer do
  something other than the model is refused, naming the key, the value export wrote and the value found;
- what a user tunes on purpose (thresholds, topk, per-class groups, the scaling filter, aspect ratio, precision,
  engine name, a dynamic bundle's batch) is followed, as nvinfer follows it, and listed in ``differences``.
It lives with DeepStream's side because what it checks is the config as gst-nvinfer reads it (nvinfer_config).
Device-side (Python 3.6).
"""
import os
import sys

from ..bundle import INFER_CONFIG, Bundle, file_sha256
from ..errors import BackendUnavailableError, BundleMismatchError, EdgeExportError, InputFileError
from ..naming import network_mode
from ..postprocess import ClassAttrs
from .infer_config import PARSER_FUNCTIONS, SCALING_FILTER_BILINEAR
from .nvinfer_config import NvInferConfig



def _close(a, b):
    # infer_config.txt holds 6 significant digits (infer_config._fmt)
    return abs(float(a) - float(b)) <= 1e-5 * max(1.0, abs(float(a)), abs(float(b)))


class BundleCheck(object):
    """What the check found: ``config`` (the NvInferConfig the commands then follow) and ``differences``, one
    line per value a user changed on purpose since export (followed, not refused)."""

    def __init__(self, bundle, config, differences, unchecked=None):
        self.bundle, self.config, self.differences = bundle, config, list(differences)
        self.unchecked = unchecked  # why the config was not compared (no GLib here), or None

    def notice(self):
        """One line for the user (None when the config is as export wrote it)."""
        if self.unchecked:
            return "note: {} not checked against model.json: {}".format(INFER_CONFIG, self.unchecked)
        if not self.differences:
            return None
        return "note: {} differs from the export: {}; followed, as nvinfer follows it".format(
            INFER_CONFIG, "; ".join(self.differences))


def check_files(bundle):
    """Every file export recorded has the sha256 recorded (bundles before the record: model.onnx's alone)."""
    meta = bundle.meta
    recorded = dict(meta.files) or {meta.onnx_file: meta.onnx_sha256}
    for name in meta.graph_files[1:]:
        if meta.graph_sha256(name):
            recorded.setdefault(name, meta.graph_sha256(name))
    for name in sorted(recorded):
        want = recorded[name]
        path = bundle.file(name)
        if not os.path.isfile(path):
            raise BundleMismatchError("{} is missing from the bundle {} (model.json records it): copy the bundle "
                                      "again, or re-export".format(name, bundle.path))
        got = file_sha256(path)
        if want and got != want:
            raise BundleMismatchError(
                "{} is not the file export wrote (sha256 {}..., model.json records {}...): it was replaced or edited "
                "(another model's graph, other labels); copy the bundle again or re-export".format(
                    path, got[:12], want[:12]))


def _contract(meta, cfg, bundle_path):
    """(key, what export wrote, what the config says) for each contract value that differs."""
    h, w = meta.model.input_size
    found = []

    def differ(key, want, got):
        found.append((key, want, got))

    if not _close(cfg.net_scale_factor, meta.net_scale_factor):
        differ("net-scale-factor", meta.net_scale_factor, cfg.net_scale_factor)
    if len(cfg.offsets) != 3 or not all(_close(a, b) for a, b in zip(cfg.offsets, meta.offsets)):
        differ("offsets", ";".join("{:.6g}".format(o) for o in meta.offsets),
               ";".join("{:.6g}".format(o) for o in cfg.offsets))
    if cfg.color_format != meta.color_format:
        differ("model-color-format", meta.color_format, cfg.color_format)
    if [cfg.net_c, cfg.net_h, cfg.net_w] != [3, h, w]:
        differ("infer-dims", "3;{};{}".format(h, w), "{};{};{}".format(cfg.net_c, cfg.net_h, cfg.net_w))
    graphs = meta.graph_files
    if cfg.onnx_file not in [os.path.join(bundle_path, g) for g in graphs]:
        differ("onnx-file", " or ".join(graphs), os.path.relpath(cfg.onnx_file, bundle_path))
    if cfg.parse_func != PARSER_FUNCTIONS[meta.layout]:
        differ("parse-bbox-func-name", PARSER_FUNCTIONS[meta.layout], cfg.parse_func)
    if list(cfg.output_names) != meta.output_names:
        differ("output-blob-names", ";".join(meta.output_names), ";".join(cfg.output_names))
    if cfg.num_classes != meta.model.num_classes:
        differ("num-detected-classes", meta.model.num_classes, cfg.num_classes)
    if cfg.labels[:len(meta.model.labels)] != meta.model.labels:
        differ("labelfile-path", "{} ({})".format(", ".join(meta.model.labels), "labels.txt"),
               "{} ({})".format(", ".join(cfg.labels), os.path.relpath(cfg.labels_file, bundle_path)))
    cluster = 4 if meta.layout == "efficient_nms" else 2
    if cfg.cluster_mode != cluster:
        differ("cluster-mode", cluster, cfg.cluster_mode)
    if not meta.dynamic_batch and cfg.batch_size != meta.batch_size:
        differ("batch-size", meta.batch_size, "{} (the graph's batch is static)".format(cfg.batch_size))
    return found


def _tuned(meta, cfg):
    """What a user may tune on purpose: the lines saying what is now different from the export."""
    out = []
    exported = ClassAttrs.from_settings(meta.settings)
    # every [class-attrs-*] key the emulation reads ("threshold" is pre-cluster-threshold's old name)
    for key, field in ClassAttrs.KEYS.items():  # in the file's order: pre, post, iou, topk, filters
        if key == "threshold":
            continue
        values = [getattr(a, field) for a in cfg.class_attrs]
        want = getattr(exported, field)
        changed = [i for i, v in enumerate(values) if not _close(v, want)]
        if not changed:
            continue
        if len(set(float(values[i]) for i in changed)) == 1 and len(changed) == len(values):
            out.append("{} {:.6g} (export: {:.6g})".format(key, float(values[0]), float(want)))
        else:
            out.append("{} {} (export: {:.6g})".format(key, ", ".join(
                "{}={:.6g}".format(meta.model.labels[i], float(values[i])) for i in changed), float(want)))
    if cfg.scaling_filter != SCALING_FILTER_BILINEAR:
        out.append("scaling-filter {} (export: {})".format(cfg.scaling_filter, SCALING_FILTER_BILINEAR))
    # export writes neither: nvinfer's default false (gstnvinfer_property_parser.h:20-27 @6.0.1) is what it means
    for key, value, default in (("maintain-aspect-ratio", cfg.maintain_aspect_ratio, False),
                                ("symmetric-padding", cfg.symmetric_padding, False)):
        if value != default:
            out.append("{} {} (export: {}; the model was trained on stretched images)".format(
                key, int(value), int(default)))
    if cfg.network_mode is not None and cfg.network_mode != network_mode(meta.precision):
        out.append("network-mode {} (export: {})".format(cfg.network_mode, network_mode(meta.precision)))
    if meta.dynamic_batch and cfg.batch_size != meta.batch_size:
        out.append("batch-size {} (export: {})".format(cfg.batch_size, meta.batch_size))
    return out


def check_bundle_whole(bundle, deepstream_version=None, config=INFER_CONFIG, config_required=True, strict=True):
    """The whole bundle against model.json (see the module's doc): a BundleCheck, or BundleMismatchError naming the
    file and field that disagree. ``bundle``: a Bundle or its folder; ``deepstream_version``: the nvinfer whose
    reading of the config the commands then follow (None: the one installed here, else 6.0.1).
    ``config_required=False``: a missing config is no error (build_engine writes it from model.json; the check's
    ``config`` is then None). ``strict=False``: on a machine without GLib the config is left unchecked, with a
    notice (commands whose work never reads it: evaluate's host rows, build_engine on a GPU box); strict commands
    refuse there, as they read the config themselves."""
    if not isinstance(bundle, Bundle):
        bundle = Bundle(bundle)
    check_files(bundle)
    path = bundle.file(config)
    if not os.path.isfile(path) and not config_required:
        return BundleCheck(bundle, None, [])
    if not os.path.isfile(path):
        raise BundleMismatchError("{} is missing from the bundle {}: nvinfer reads only it; copy the bundle again, "
                                  "or re-export".format(config, bundle.path))
    from .. import keyfile
    if not keyfile.available() and not strict:
        return BundleCheck(bundle, None, [], unchecked="libglib-2.0 not found here (GKeyFile reads it as nvinfer "
                                                       "does)")
    if not keyfile.available():  # a machine without GLib cannot read the config as nvinfer does: say that
        raise BackendUnavailableError("libglib-2.0 not found: the bundle's infer_config.txt is checked as nvinfer "
                                      "reads it, with GLib's GKeyFile; install it (Debian/Ubuntu: libglib2.0-0; every "
                                      "Jetson with DeepStream has it)")
    try:
        cfg = NvInferConfig(path, deepstream_version)
    except InputFileError as e:  # labelfile-path that cannot be read, a config GLib cannot parse
        raise BundleMismatchError(str(e))
    except EdgeExportError as e:  # a value nvinfer itself refuses
        raise BundleMismatchError("{} is not a config nvinfer can start with: {}".format(path, e))
    wrong = _contract(bundle.meta, cfg, bundle.path)
    if wrong:
        raise BundleMismatchError("{} disagrees with model.json: {}. nvinfer would feed or read the network unlike "
                                  "the model it was exported from; restore these values or re-export".format(
                                      path, "; ".join("{} is {} (export wrote {})".format(k, got, want)
                                                      for k, want, got in wrong)))
    return BundleCheck(bundle, cfg, _tuned(bundle.meta, cfg))


def load_bundle(path, check=True, deepstream_version=None, config_required=True, strict=True):
    """The bundle folder at ``path``, checked whole (check_bundle_whole: model.json's schema, every recorded
    file's sha256, infer_config.txt and labels.txt against model.json; ``check=False``: model.json alone). The
    check's result is ``bundle.checked`` (its ``differences``: what a user tuned in the config since export)."""
    bundle = Bundle(path)
    if check:
        bundle.checked = check_bundle_whole(bundle, deepstream_version, config_required=config_required,
                                            strict=strict)
    return bundle


def open_checked(path, deepstream_version=None, stderr=None, config_required=True, strict=True):
    """For the commands: ``load_bundle`` whole, its notice of tuned values (if any) written to ``stderr``."""
    bundle = load_bundle(path, deepstream_version=deepstream_version, config_required=config_required,
                         strict=strict)
    notice = bundle.checked.notice()
    if notice:
        (stderr or sys.stderr).write(notice + "\n")
    return bundle
