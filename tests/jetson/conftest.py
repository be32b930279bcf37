import os
import subprocess

import pytest

from ..conftest import REPO

HOST_BUILD = os.path.join(REPO, "jetson", "parser", "build-host")


@pytest.fixture(scope="session")
def parser_build(tmp_path_factory):
    """The host build of jetson/parser (scripts/test.sh makes it; built here when missing)."""
    from edgeexport.parser_lib import build_parser
    if not os.path.isfile(os.path.join(HOST_BUILD, "libedgeexport_parser_shim.so")):
        return build_parser(os.path.join(REPO, "jetson", "parser"), str(tmp_path_factory.mktemp("parser-build")))
    subprocess.check_call(["cmake", "--build", HOST_BUILD, "-j2"], stdout=subprocess.DEVNULL)  # up to date
    return HOST_BUILD


@pytest.fixture(scope="session")
def parser(parser_build):
    from edgeexport.parser_lib import ParserLibrary
    return ParserLibrary.from_build_dir(parser_build)
