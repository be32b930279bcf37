import os
import subprocess

import pytest

from ..conftest import REPO

# scripts/test.sh builds tests/device/parser (the shipped parser + its C++ tests) here
TEST_BUILD = os.path.join(REPO, "build", "parser-tests")
TEST_SOURCES = os.path.join(REPO, "tests", "device", "parser")


def build_parser_tests():
    """The parser with its C++ tests and benchmark, built (or brought up to date) in TEST_BUILD."""
    subprocess.check_call(["cmake", "-S", TEST_SOURCES, "-B", TEST_BUILD, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                          stdout=subprocess.DEVNULL)
    subprocess.check_call(["cmake", "--build", TEST_BUILD, "-j2"], stdout=subprocess.DEVNULL)
    return TEST_BUILD


@pytest.fixture(scope="session")
def parser_build():
    return build_parser_tests()


@pytest.fixture(scope="session")
def parser(parser_build):
    from edgeexport.device.parser_library import ParserLibrary
    return ParserLibrary.from_build_dir(parser_build)
