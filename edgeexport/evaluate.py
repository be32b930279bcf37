"""``python -m edgeexport.evaluate BUNDLE --backend ...``: mAP backend by backend (edgeexport.device.check.evaluate).
Imports only the device side: the bundle ships it."""
from .device.check.evaluate import cli, get_args_parser, main  # noqa: F401

if __name__ == "__main__":
    cli()
