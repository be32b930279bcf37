import os

import pytest

from edgeexport.device.fileio import atomic_write_bytes, atomic_write_with, remove_stale_temporaries


def test_interrupted_write_keeps_the_old_content_and_leaves_nothing(tmp_path):
    p = tmp_path / "model.onnx"
    atomic_write_bytes(p, b"old")

    class Boom(Exception):
        pass

    def dies(f):
        f.write(b"half")
        raise Boom
    with pytest.raises(Boom):
        atomic_write_with(p, dies)
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.onnx"]


def test_sweep_removes_only_the_temporaries_of_the_named_files(tmp_path):
    keep = ["last.pth", ".last.pth.tmp", ".last.pth.short.tmp", ".other.pth.a1b2c3d4.tmp", "x.a1b2c3d4.tmp",
            ".last.pth.a1b2c3d4.tmp.bak"]
    stale = [".last.pth.a1b2c3d4.tmp", ".curves.png.zz_9YY01.tmp"]
    for n in keep + stale:
        (tmp_path / n).write_bytes(b"x")
    assert remove_stale_temporaries(str(tmp_path), ["last.pth", "curves.png"]) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted(keep)
    assert remove_stale_temporaries(str(tmp_path / "absent"), ["last.pth"]) == []


def test_sweep_matches_what_the_atomic_writer_really_names_its_temporaries(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    atomic_write_bytes(tmp_path / "m.engine", b"plan")
    monkeypatch.setattr(os, "replace", real_replace)
    (tmp_path / seen[0]).write_bytes(b"as if a SIGKILL left it")
    assert remove_stale_temporaries(str(tmp_path), ["m.engine"]) == seen


@pytest.mark.parametrize("content,words", [
    (b"", "not valid JSON"),
    (b"{\"a\": 1", "not valid JSON"),                        # truncated
    (b"\xff\xfe\x00binary", "not valid JSON"),               # not UTF-8
    (b"[" * 200000 + b"]" * 200000, "not valid JSON"),       # deeper than the parser recurses
])
def test_read_json_turns_anything_not_json_into_one_error(tmp_path, content, words):
    from edgeexport.device.errors import DatasetError, InputFileError
    from edgeexport.device.fileio import read_json
    p = tmp_path / "x.json"
    p.write_bytes(content)
    with pytest.raises(InputFileError) as e:
        read_json(str(p), "; do this")
    assert words in str(e.value) and str(p) in str(e.value) and str(e.value).endswith("; do this")
    with pytest.raises(DatasetError):
        read_json(str(p), error=DatasetError)


def test_read_json_reads_and_names_a_missing_file(tmp_path):
    from edgeexport.device.errors import InputFileError
    from edgeexport.device.fileio import read_json
    p = tmp_path / "ok.json"
    p.write_text('{"a": [1, 2]}')
    assert read_json(str(p)) == {"a": [1, 2]}
    with pytest.raises(InputFileError, match="cannot read .*missing.json"):
        read_json(str(tmp_path / "missing.json"))
    with pytest.raises(InputFileError, match="cannot read"):
        read_json(str(tmp_path))  # a folder
