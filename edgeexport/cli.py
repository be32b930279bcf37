"""The one place where errors become messages and exit codes. Device-side (Python 3.6)."""
import logging
import sys

from .errors import EdgeExportError


def run_cli(get_args_parser, main, argv=None):
    """Parse, run ``main(args)``, and turn an EdgeExportError into one line on stderr and its exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    args = get_args_parser().parse_args(argv)
    try:
        result = main(args)
    except EdgeExportError as e:
        print("error: {}".format(e), file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)
