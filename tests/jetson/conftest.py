import os
import subprocess

import pytest

from ..conftest import REPO

# scripts/test.sh builds tests/jetson/parser (the shipped parser, its host shim and its C++ tests) here
TEST_BUILD = os.path.join(REPO, "build", "parser-tests")
TEST_SOURCES = os.path.join(REPO, "tests", "jetson", "parser")
PARSER_DIR = os.path.join(REPO, "jetson", "parser")


def build_parser_tests(out=TEST_BUILD, *make_args):
    """The parser with its C++ tests and benchmark, built (or brought up to date) in ``out``."""
    subprocess.check_call(["make", "-s", "-C", TEST_SOURCES, "OUT=" + out, "-j2"] + list(make_args),
                          stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def parser_build():
    return build_parser_tests()


@pytest.fixture(scope="session")
def parser(parser_build):
    from edgeexport.device.deepstream.parser_library import ParserLibrary
    return ParserLibrary.from_build_dir(parser_build)
