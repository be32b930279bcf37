"""``python3 -m edgeexport.deepstream_app BUNDLE --source S ... --sink K ...``: the bundle in a Python DeepStream
app (edgeexport.device.deepstream.pyds_app). Imports only the device side: the bundle ships it."""
from .device.deepstream.pyds_app import cli, get_args_parser, main  # noqa: F401

if __name__ == "__main__":
    cli()
