"""``python -m sprites download``: the whole path against a local stand-in for the hub (never the network),
the identity checks, offline behaviour, and where ``load_sprites()`` finds the files."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sprites import data, download
from sprites.data import COURSE_IMAGES, COURSE_LABELS, SpritesDataError, read_sprites_arrays

ROOT = Path(__file__).resolve().parents[1]
N = 12  # rows of the stand-in files


def _git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Small stand-ins for the two course files, served by a fake ``hf_hub_download``; the expected identities
    are set to theirs. Returns the folder of the served files and the list of calls made."""
    served = tmp_path / "hub"
    served.mkdir()
    rng = np.random.default_rng(0)
    np.save(served / COURSE_IMAGES, rng.integers(0, 256, (N, 16, 16, 3), dtype=np.uint8))
    np.save(served / COURSE_LABELS, np.eye(5)[rng.integers(0, 5, N)])
    calls: list[dict] = []

    def fake_hf_hub_download(repo_id, filename, *, repo_type=None, revision=None, local_dir=None, **kwargs):
        calls.append({"repo_id": repo_id, "filename": filename, "repo_type": repo_type, "revision": revision,
                      "local_dir": local_dir})
        target = Path(local_dir) / filename
        shutil.copy(served / filename, target)
        return str(target)

    monkeypatch.setattr(download, "hf_hub_download", fake_hf_hub_download)
    monkeypatch.setattr(download, "hub_unreachable_reason", lambda *a, **k: None)
    monkeypatch.setattr(download, "N_ROWS", N)
    monkeypatch.setattr(download, "IMAGES_GIT_BLOB_ID", _git_blob_id((served / COURSE_IMAGES).read_bytes()))
    monkeypatch.setattr(download, "LABELS_SHA256", hashlib.sha256((served / COURSE_LABELS).read_bytes()).hexdigest())
    return served, calls


@pytest.fixture
def no_default_data(tmp_path, monkeypatch):
    """No $SPRITEDIFF_DATA, no ../shared folder, and an empty user cache under tmp_path."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "SHARED_DATA", tmp_path / "no-shared" / "data" / "sprites")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "spritediff" / "sprites"


def test_file_digests_are_sha256_and_the_git_blob_id(tmp_path):
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello\n")
    sha256, blob = download.file_digests(f, chunk=2)  # small chunks: the digests do not depend on them
    assert sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert blob == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"


def test_download_puts_checked_files_into_dir_and_they_load(hub, tmp_path, capsys):
    served, calls = hub
    dest = tmp_path / "data" / "sprites"
    assert download.main(["download", "--to", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted([COURSE_IMAGES, COURSE_LABELS])  # no temporary left
    for name in (COURSE_IMAGES, COURSE_LABELS):
        assert (dest / name).read_bytes() == (served / name).read_bytes()
    assert [(c["repo_id"], c["repo_type"], c["revision"]) for c in calls] == \
        [("ashis-palai/sprites_image_dataset", "dataset", "a24918819843abc0d1bee75a239024415081a87d")] * 2
    assert {c["filename"] for c in calls} == {COURSE_IMAGES, COURSE_LABELS}
    assert all(Path(c["local_dir"]).parent == dest for c in calls)  # downloaded inside DIR, then renamed
    out = capsys.readouterr().out
    assert f"sprites: {dest / COURSE_IMAGES} and {dest / COURSE_LABELS}" in out
    images, labels = read_sprites_arrays(dest)
    assert images.shape == (N, 16, 16, 3) and labels.shape == (N,)

    # a second run finds both files in place and correct: no download
    calls.clear()
    assert download.main(["download", "--to", str(dest)]) == 0
    assert calls == [] and "already holds both course files" in capsys.readouterr().out
    # a wrong file in place (an old, broken copy) is downloaded again and replaced; the good one is kept
    (dest / COURSE_LABELS).write_bytes(b"broken")
    assert download.main(["download", "--to", str(dest)]) == 0
    assert [c["filename"] for c in calls] == [COURSE_LABELS]
    assert (dest / COURSE_LABELS).read_bytes() == (served / COURSE_LABELS).read_bytes()
    assert "replacing" in capsys.readouterr().out


def test_the_real_identities_are_the_course_files():
    """The constants the command checks against (the tests above replace them for their small files)."""
    assert download.HUB_REPO == "ashis-palai/sprites_image_dataset" and download.HUB_REPO_TYPE == "dataset"
    assert download.HUB_REVISION == "a24918819843abc0d1bee75a239024415081a87d"
    assert download.N_ROWS == 89_400
    assert download.IMAGES_GIT_BLOB_ID == "b1fea8dd0c4f6f8ab64bea721918a035d75c11a7"
    assert download.LABELS_SHA256 == "b71222bd58b57cd99b1b92d830393e86ce215e0f69602f2c82aad1522f030ed7"
    shared_labels = data.SHARED_DATA / COURSE_LABELS  # the exact course labels, where this machine has them
    if shared_labels.is_file():
        download.check_course_file(shared_labels, COURSE_LABELS)


@pytest.mark.parametrize("constant,value,match", [
    ("LABELS_SHA256", "0" * 64, f"{COURSE_LABELS}: sha256 .* does not match the expected 0000"),
    ("IMAGES_GIT_BLOB_ID", "f" * 40, f"{COURSE_IMAGES}: git blob id .* does not match the expected ffff"),
    ("N_ROWS", N + 1, r"has shape \(12, 16, 16, 3\) and dtype uint8, expected \(13, 16, 16, 3\) uint8"),
])
def test_a_mismatch_writes_nothing_and_stops_with_one_line(hub, tmp_path, capsys, monkeypatch, constant, value,
                                                            match):
    monkeypatch.setattr(download, constant, value)
    dest = tmp_path / "sprites"
    assert download.main(["download", "--to", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(match, err), err
    assert list(dest.iterdir()) == []  # neither file, nor the temporary folder


def test_a_corrupt_download_or_a_hub_error_writes_nothing(hub, tmp_path, capsys, monkeypatch):
    served, _ = hub
    (served / COURSE_LABELS).write_bytes(b"<html>not found</html>")
    dest = tmp_path / "sprites"
    assert download.main(["download", "--to", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "not a readable .npy" in err and err.count("\n") == 1
    assert list(dest.iterdir()) == []

    def failing(*args, **kwargs):
        raise OSError("Connection reset by peer\nmore detail")

    monkeypatch.setattr(download, "hf_hub_download", failing)
    assert download.main(["download", "--to", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "could not download" in err and "Connection reset by peer" in err and err.count("\n") == 1
    assert list(dest.iterdir()) == []


def test_offline_gives_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the hub must not be called when it is unreachable")

    monkeypatch.setattr(download, "hf_hub_download", no_network)
    monkeypatch.setattr(download, "hub_unreachable_reason",
                        lambda *a, **k: "cannot reach huggingface.co (Name or service not known)")
    dest = tmp_path / "sprites"
    assert download.main(["download", "--to", str(dest)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot download the sprites")
    assert "cannot reach huggingface.co" in lines[0] and "offline" in lines[0]
    assert not dest.exists()


def test_default_folder_is_the_user_cache_and_load_sprites_finds_it(hub, no_default_data, capsys):
    cache = no_default_data
    with pytest.raises(SpritesDataError, match="no sprites found in .*python -m sprites download"):
        read_sprites_arrays()
    assert download.main(["download"]) == 0
    assert (cache / COURSE_IMAGES).is_file() and (cache / COURSE_LABELS).is_file()
    assert "note:" not in capsys.readouterr().out  # load_sprites() will read them: no hint needed
    assert data.default_data_path() == cache
    images, _ = read_sprites_arrays()
    assert images.shape == (N, 16, 16, 3)
    assert len(data.load_sprites()) == N


def test_search_order_env_then_shared_then_cache(hub, no_default_data, tmp_path, monkeypatch, capsys):
    cache = no_default_data
    assert download.main(["download"]) == 0
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setattr(data, "SHARED_DATA", shared)
    assert data.default_data_path() == cache  # an empty shared folder is passed over
    np.savez(shared / "sprites.npz", images=np.zeros((3, 16, 16, 3), np.uint8), labels=np.eye(5)[:3])
    assert data.data_search_path() == [shared, cache] and data.default_data_path() == shared
    assert download.main(["download"]) == 0  # already there; the files in the cache are not the ones read
    assert f"note: load_sprites() reads {shared} first" in capsys.readouterr().out
    # $SPRITEDIFF_DATA, when set, is the only place looked at, and the default download folder
    env = tmp_path / "mine"
    monkeypatch.setenv(data.DATA_ENV, str(env))
    assert data.data_search_path() == [env] and download.default_download_path() == env
    with pytest.raises(SpritesDataError, match=r"no sprites found in .*mine \(\$SPRITEDIFF_DATA\)"):
        read_sprites_arrays()
    assert download.main(["download"]) == 0
    assert read_sprites_arrays()[0].shape == (N, 16, 16, 3)


def test_missing_explicit_path_says_how_to_get_the_data(tmp_path):
    with pytest.raises(SpritesDataError, match="no such file or folder.*python -m sprites download"):
        read_sprites_arrays(tmp_path / "nowhere")
    with pytest.raises(SpritesDataError, match="no sprites found.*python -m sprites download --to"):
        read_sprites_arrays(tmp_path)


def test_python_m_sprites_dispatches_to_download(tmp_path):
    """The module entry point (help only: the command itself would try the network)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}  # wide: argparse wraps at hyphens
    proc = subprocess.run([sys.executable, "-m", "sprites", "download", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "--to DIR" in proc.stdout and "ashis-palai/sprites_image_dataset" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "sprites"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "download" in proc.stderr
