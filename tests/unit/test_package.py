"""scripts/deploy/package.py's guard around chalice package's zip cache."""
import threading
import time
import zipfile

import pytest

from scripts.deploy import package


def write_zips(out, *, damaged=False):
    out.mkdir(parents=True)
    for name in package.ZIPS:
        with zipfile.ZipFile(out / name, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("module.py", "x = 1\n" * 200)
        if damaged:
            data = bytearray((out / name).read_bytes())
            data[0:4] = b"XXXX"  # the first member's header, as a half-written zip leaves it
            (out / name).write_bytes(bytes(data))


def test_a_damaged_cached_zip_is_rebuilt_once_from_an_empty_cache(tmp_path, monkeypatch, capsys):
    cache = tmp_path / ".chalice" / "deployments"
    cache.mkdir(parents=True)
    (cache / "managed-layer-abc-python3.11.zip").write_bytes(b"half a zip")
    runs = []

    def fake_chalice_package(stage, out, project_dir):
        runs.append(sorted(p.name for p in cache.glob("*.zip")))
        write_zips(out, damaged=len(runs) == 1)

    monkeypatch.setattr(package, "_chalice_package", fake_chalice_package)
    package._chalice_package_checked("dev", tmp_path / "out", tmp_path)

    assert runs == [["managed-layer-abc-python3.11.zip"], []]
    assert all(package._damaged(tmp_path / "out" / name) is None for name in package.ZIPS)
    assert "unreadable; rebuilding" in capsys.readouterr().err


def test_a_zip_damaged_twice_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(package, "_chalice_package",
                        lambda stage, out, project_dir: write_zips(out, damaged=True))

    with pytest.raises(package.PackageError, match="damaged zip twice.*check the disk"):
        package._chalice_package_checked("dev", tmp_path / "out", tmp_path)


def test_two_builds_of_one_project_never_overlap(tmp_path, monkeypatch):
    inside = []
    overlaps = []

    def slow_chalice_package(stage, out, project_dir):
        if inside:
            overlaps.append(stage)
        inside.append(stage)
        time.sleep(0.05)
        write_zips(out)
        inside.remove(stage)

    monkeypatch.setattr(package, "_chalice_package", slow_chalice_package)
    builds = [threading.Thread(target=package._chalice_package_checked,
                               args=(f"s{i}", tmp_path / f"out{i}", tmp_path)) for i in range(3)]
    for build in builds:
        build.start()
    for build in builds:
        build.join()

    assert overlaps == [] and inside == []
    assert all((tmp_path / f"out{i}" / "deployment.zip").exists() for i in range(3))
