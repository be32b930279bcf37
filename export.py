"""Export a trained SSDLite checkpoint to a DeepStream bundle for a Jetson: ``python export.py --help``.

The command line of edgeexport.export (also ``python -m edgeexport.export`` and ``edgeexport-export``).
"""
from edgeexport.export.cli import get_args_parser, main  # noqa: F401  (torchvision-references style)

if __name__ == "__main__":
    from edgeexport.export.cli import cli
    cli()
