"""``ablauf store check`` and ``ablauf --version``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ablauf.cli import main
from ablauf.store import open_store


def _store(path: Path, timers: int = 0) -> None:
    store = open_store(str(path))
    with store.transaction():
        for i in range(timers):
            store.insert_timer(f"run-{i}", 1, "t" * 50, 0, float(i))
    store.close()


def test_a_sound_store_checks_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.db"
    _store(path)
    before = path.stat().st_mtime_ns
    assert main(["store", "check", "--target", f"sqlite:///{path}"]) == 0
    assert capsys.readouterr().out == f"{path}: ok\n"
    assert path.stat().st_mtime_ns == before


def test_damage_is_listed_and_fails_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "damaged.db"
    _store(path, timers=3000)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2 - (size // 2) % 4096 + 16)
        f.write(b"\xff" * 2000)
    assert main(["store", "check", "--target", f"sqlite:///{path}"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines)
    assert not any(line.endswith(": ok") for line in lines)


def test_a_missing_file_is_named_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.db"
    assert main(["store", "check", "--target", f"sqlite:///{path}"]) == 1
    assert capsys.readouterr().err == f"ablauf: store {path}: no such file\n"
    assert not path.exists()


def test_another_sqlite_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    assert main(["store", "check", "--target", f"sqlite:///{path}"]) == 1
    assert "the file is not an ablauf store" in capsys.readouterr().err


def test_version_is_the_package_s(capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    import ablauf

    with open(Path(__file__).parents[2] / "pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"]["version"]
    assert ablauf.__version__ == declared
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"ablauf {declared}\n"
