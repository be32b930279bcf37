"""``python -m training.train``: the trainer edgeexport.train under the name earlier commands used (the README's
log keeps working). ``python -m edgeexport.train`` and ``edgeexport-train`` are the same command."""
from edgeexport.train.cli import get_args_parser, main  # noqa: F401

if __name__ == "__main__":
    from edgeexport.train.cli import cli
    cli()
