"""``python3 -m edgeexport.deepstream_config BUNDLE --source S ... --sink K ...``: deepstream-app configs for
cameras, streams, trackers and sinks (edgeexport.device.deepstream.app_config). Imports only the device side."""
from .device.deepstream.app_config import cli, get_args_parser, main  # noqa: F401

if __name__ == "__main__":
    cli()
