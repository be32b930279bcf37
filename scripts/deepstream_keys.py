"""Extract the config keys DeepStream's own parsers accept, per group, from a DeepStream source tree.

    python scripts/deepstream_keys.py DS_ROOT VERSION [DS_ROOT VERSION ...] \
        --out tests/device/deepstream/deepstream_keys.json

DS_ROOT is a DeepStream release tree holding sources/ and samples/ (e.g. a branch of the public mirror
hiennguyen9874/deepstream-sources: `git archive 6.0.1 sources samples | tar x`). The keys are read from the parse
functions themselves: every `g_strcmp0 (*key, NAME)` and `g_key_file_get_*(key_file, group, NAME, ...)` inside
deepstream-app's parse_<group>(), gst-nvinfer's property and class-attrs parsers and nvmsgconv's sensor/place/
analytics parsers, NAME resolved through the #defines of the same tree; the IOU tracker's keys from the release's
own samples/configs/deepstream-app/config_tracker_IOU.yml. A key outside these lists makes deepstream-app warn
"Unknown key" and the others ignore it, so the tests check every key we write against them. The output (key names
only) is committed; CI does not need the DeepStream tree.
"""
import argparse
import json
import os
import re
import sys

# deepstream-app parse function -> the config group(s) it reads
APP_FUNCTIONS = {
    "parse_app": "application", "parse_tests": "tests", "parse_source": "source", "parse_streammux": "streammux",
    "parse_osd": "osd", "parse_gie": "primary-gie", "parse_tracker": "tracker", "parse_sink": "sink",
    "parse_tiled_display": "tiled-display", "parse_msgconv": "message-converter",
    "parse_msgconsumer": "message-consumer", "parse_source_list": "source-list",
}
NVINFER_FUNCTIONS = {"gst_nvinfer_parse_props": "property", "gst_nvinfer_parse_other_attribute": "property",
                     "gst_nvinfer_parse_class_attrs": "class-attrs"}
MSGCONV_FUNCTIONS = {"nvds_msg2p_parse_sensor": "sensor", "nvds_msg2p_parse_place": "place",
                     "nvds_msg2p_parse_analytics": "analytics"}
FILES = {
    "app": ["apps/apps-common/src/deepstream_config_file_parser.c",
            "apps/sample_apps/deepstream-app/deepstream_app_config_parser.c"],
    "app_headers": ["apps/apps-common/includes/deepstream_config_file_parser.h",
                    "apps/sample_apps/deepstream-app/deepstream_app.h"],
    "nvinfer": ["gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp"],
    "nvinfer_headers": ["gst-plugins/gst-nvinfer/gstnvinfer_property_parser.h"],
    "msgconv": ["libs/nvmsgconv/deepstream_schema/deepstream_schema.cpp"],
    "msgconv_headers": ["libs/nvmsgconv/deepstream_schema/deepstream_schema.h"],
}
IOU_SAMPLE = "samples/configs/deepstream-app/config_tracker_IOU.yml"
DEFINE = re.compile(r'^\s*#define\s+(\w+)\s+"([^"]*)"', re.M)
FUNCTION = re.compile(r'^(?:static\s+)?(?:gboolean|bool)\s+(\w+)\s*\(', re.M)
KEY_COMPARE = re.compile(r'g_strcmp0\s*\(\s*\*?key\s*,\s*(\w+|"[^"]*")\s*\)'
                         r'|g_key_file_get_\w+\s*\(\s*key_file\s*,\s*\w+\s*,\s*(\w+|"[^"]*")')


def read(tree, rel):
    path = os.path.join(tree, rel)
    if not os.path.isfile(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def keys_by_function(tree, sources, headers, functions):
    texts = [read(tree, rel) for rel in sources + headers]
    defines = {}
    for text in texts:
        defines.update(DEFINE.findall(text))
    out = {}
    for text in texts[:len(sources)]:
        starts = [(m.start(), m.group(1)) for m in FUNCTION.finditer(text)] + [(len(text), None)]
        for (begin, name), (end, _) in zip(starts, starts[1:]):
            group = functions.get(name)
            if group is None:
                continue
            for pair in KEY_COMPARE.findall(text[begin:end]):
                token = pair[0] or pair[1]
                key = token.strip('"') if token.startswith('"') else defines.get(token)
                if key is not None:
                    out.setdefault(group, set()).add(key)
    return {g: sorted(k) for g, k in sorted(out.items())}


def yaml_keys(path):
    """Section -> keys of a tracker YAML (two levels, as DeepStream's tracker configs are written)."""
    out, section = {}, None
    try:
        with open(path) as f:
            lines = f.readlines()
    except (IOError, OSError):
        return {}
    for line in lines:
        body = line.split("#", 1)[0].rstrip()
        if not body.strip() or body.startswith("%"):
            continue
        m = re.match(r"^(\s*)([A-Za-z0-9_]+):", body)
        if not m:
            continue
        if not m.group(1):
            section = m.group(2)
            out.setdefault(section, [])
        elif section:
            out[section].append(m.group(2))
    return {k: sorted(v) for k, v in out.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trees", nargs="+", help="DS_ROOT VERSION pairs (DS_ROOT holds sources/ and samples/)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if len(args.trees) % 2:
        p.error("give DS_TREE VERSION pairs")
    result = {}
    for root, version in zip(args.trees[::2], args.trees[1::2]):
        tree = os.path.join(root, "sources")
        if not os.path.isdir(os.path.join(tree, "gst-plugins", "gst-nvinfer")):
            p.error("{} is not a DeepStream release tree (no sources/gst-plugins/gst-nvinfer)".format(root))
        result[version] = {
            "deepstream-app": keys_by_function(tree, FILES["app"], FILES["app_headers"], APP_FUNCTIONS),
            "nvinfer": keys_by_function(tree, FILES["nvinfer"], FILES["nvinfer_headers"], NVINFER_FUNCTIONS),
            "nvmsgconv": keys_by_function(tree, FILES["msgconv"], FILES["msgconv_headers"], MSGCONV_FUNCTIONS),
            "tracker_iou_yml": yaml_keys(os.path.join(root, IOU_SAMPLE)),
        }
        print("{}: {} deepstream-app groups, {} nvinfer property keys".format(
            version, len(result[version]["deepstream-app"]), len(result[version]["nvinfer"].get("property", []))))
    with open(args.out, "w") as f:
        json.dump({"source": "DeepStream's parsers, extracted by scripts/deepstream_keys.py", "versions": result},
                  f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
