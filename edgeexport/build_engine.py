"""``python3 -m edgeexport.build_engine BUNDLE``: the device command edgeexport.device.tensorrt.build_engine under its
short name. Like every top-level module of the package, it imports only the device side: the bundle ships it."""
from .device.tensorrt.build_engine import cli, get_args_parser, main  # noqa: F401

if __name__ == "__main__":
    cli()
