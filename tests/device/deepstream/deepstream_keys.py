"""The config keys DeepStream's own parsers accept, per version (deepstream_keys.json, written by
scripts/deepstream_keys.py from DeepStream 6.0.1, 6.1.1, 6.2 and 6.3's sources)."""
import json
import os

with open(os.path.join(os.path.dirname(__file__), "deepstream_keys.json")) as _f:
    KEYS = json.load(_f)["versions"]
DS_VERSIONS = sorted(KEYS)


def nvinfer_keys(version, group):
    return set(KEYS[version]["nvinfer"][group])


def app_group(name):
    """deepstream-app group name -> the parser that reads it: source0 -> source, sink2 -> sink."""
    return name.rstrip("0123456789")


def app_keys_known(kf, versions=DS_VERSIONS):
    """Every (version, group, key) of a loaded deepstream-app config that some version's parser would not read."""
    unknown = []
    for v in versions:
        groups = KEYS[v]["deepstream-app"]
        for group in kf.groups():
            allowed = set(groups.get(app_group(group), []))
            unknown += [(v, group, k) for k in kf.keys(group) if k not in allowed]
    return unknown
