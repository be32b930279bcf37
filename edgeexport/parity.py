"""``python3 -m edgeexport.parity BUNDLE``: the device command edgeexport.device.check.parity under its short name.
Like every top-level module of the package, it imports only the device side: the bundle ships it."""
from .device.check.parity import cli, get_args_parser, main  # noqa: F401

if __name__ == "__main__":
    cli()
