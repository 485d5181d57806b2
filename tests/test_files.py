"""Files the user names (exports, reports, the signer's state) are written whole or not at all, mode
0600: no partial copy ever has a name on Linux (``O_TMPFILE``), the named fallback is removed on any
exception or SIGTERM, and a ``kill -9`` of a real ``mediation export`` leaves nothing behind but a
complete older export.  :mod:`mediation._files`."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediation import SQLiteStore
from mediation import _files as files
from mediation._checkpoints.state import SignerState
from mediation._export import write_export
from mediation._files import atomic_write, atomic_write_text
from test_cli import build_store, run

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="O_TMPFILE and /proc are Linux's")

SRC = str(Path(__file__).parents[1] / "src")
OLD = b"the complete old file\n"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


def force_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem that refuses ``O_TMPFILE`` (EOPNOTSUPP)."""
    real_open = os.open

    def no_tmpfile(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), path)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", no_tmpfile)


@pytest.fixture(params=["unnamed", "fallback"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: with ``O_TMPFILE``, and with the named temporary file of the fallback."""
    if request.param == "fallback":
        force_fallback(monkeypatch)
    return str(request.param)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def needs_tmpfile(directory: Path) -> None:
    fd = files._unnamed(str(directory))
    if fd is None:  # pragma: no cover - a filesystem without O_TMPFILE
        pytest.skip(f"{directory} does not support O_TMPFILE")
    os.close(fd)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# -- the helper ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
@pytest.mark.parametrize("existing", [False, True])
def test_the_file_is_0600_whatever_the_umask(
    tmp_path: Path, way: str, mask: int, existing: bool
) -> None:
    target = tmp_path / "out.bin"
    if existing:
        target.write_bytes(OLD)
        target.chmod(0o644)
    os.umask(mask)
    with atomic_write(target) as f:
        f.write(b"\x00personal data\xff")
    assert target.read_bytes() == b"\x00personal data\xff"
    assert mode_of(target) == 0o600
    assert names(tmp_path) == ["out.bin"]


def test_another_mode_when_asked(tmp_path: Path, way: str) -> None:
    target = tmp_path / "page.html"
    with atomic_write_text(target, 0o640) as f:
        f.write("<p>\n")
    assert mode_of(target) == 0o640 and target.read_bytes() == b"<p>\n"


def test_text_is_utf8_with_newlines(tmp_path: Path, way: str) -> None:
    target = tmp_path / "t.txt"
    with atomic_write_text(target) as f:
        f.write("陈女士\n刘先生\n")
    assert target.read_bytes() == "陈女士\n刘先生\n".encode()


def test_while_writing_the_data_has_no_name(tmp_path: Path) -> None:
    """With ``O_TMPFILE`` nothing new appears in the directory until the data is complete."""
    needs_tmpfile(tmp_path)
    target = tmp_path / "out.jsonl"
    with atomic_write(target) as f:
        f.write(b"x" * 100_000)
        f.flush()
        assert names(tmp_path) == []
    assert names(tmp_path) == ["out.jsonl"]
    target.write_bytes(OLD)
    with atomic_write(target) as f:
        f.write(b"y" * 100_000)
        f.flush()
        assert names(tmp_path) == ["out.jsonl"] and target.read_bytes() == OLD
    assert names(tmp_path) == ["out.jsonl"] and target.read_bytes() == b"y" * 100_000


@pytest.mark.usefixtures("umask")
def test_the_fallback_file_is_hidden_and_0600_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    force_fallback(monkeypatch)
    os.umask(0)
    target = tmp_path / "out.jsonl"
    with atomic_write(target) as f:
        f.write(b"secret")
        f.flush()
        (tmp,) = tmp_path.iterdir()
        assert tmp.name.startswith(".out.jsonl.") and mode_of(tmp) == 0o600
    assert names(tmp_path) == ["out.jsonl"]


class Boom(Exception):
    pass


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("existing", [False, True])
def test_an_exception_leaves_nothing_but_the_old_file(
    tmp_path: Path, way: str, exc: type[BaseException], existing: bool
) -> None:
    target = tmp_path / "out.jsonl"
    if existing:
        target.write_bytes(OLD)
    with pytest.raises(exc), atomic_write(target) as f:
        f.write(b"half of it" * 10_000)
        f.flush()
        raise exc()
    assert names(tmp_path) == (["out.jsonl"] if existing else [])
    if existing:
        assert target.read_bytes() == OLD


def test_a_failed_rename_leaves_the_old_file_and_no_copy(tmp_path: Path, way: str) -> None:
    target = tmp_path / "out"
    target.mkdir()  # a directory cannot be replaced by a file
    (target / "kept").write_bytes(OLD)
    with pytest.raises(IsADirectoryError), atomic_write(target) as f:
        f.write(b"data")
    assert names(tmp_path) == ["out"] and names(target) == ["kept"]


def test_no_directory(tmp_path: Path, way: str) -> None:
    with pytest.raises(FileNotFoundError), atomic_write(tmp_path / "no" / "such") as f:
        f.write(b"data")
    assert names(tmp_path) == []


@pytest.fixture
def sigterm_default() -> Iterator[None]:
    old = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@pytest.mark.usefixtures("sigterm_default")
@pytest.mark.parametrize("existing", [False, True])
def test_sigterm_while_writing_exits_and_leaves_nothing(
    tmp_path: Path, way: str, existing: bool
) -> None:
    target = tmp_path / "out.jsonl"
    if existing:
        target.write_bytes(OLD)
    with pytest.raises(SystemExit) as info, atomic_write(target) as f:
        f.write(b"half of it")
        f.flush()
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between two bytecodes
            time.sleep(0.001)
        pytest.fail("SIGTERM did not interrupt the write")
    assert info.value.code == 128 + signal.SIGTERM
    assert names(tmp_path) == (["out.jsonl"] if existing else [])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


@pytest.mark.usefixtures("sigterm_default")
def test_sigterm_while_renaming_waits_until_the_file_is_in_place(
    tmp_path: Path, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM arriving between naming the complete file and renaming it over the old one does
    not leave the temporary name behind: the rename finishes, then the process exits."""
    target = tmp_path / "out.jsonl"
    target.write_bytes(OLD)
    real_replace = os.replace

    def replace_under_sigterm(src: Any, dst: Any, **kw: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs here, and must wait
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace_under_sigterm)
    with pytest.raises(SystemExit), atomic_write(target) as f:
        f.write(b"new")
    assert names(tmp_path) == ["out.jsonl"] and target.read_bytes() == b"new"


def test_other_sigterm_handlers_are_left_alone(tmp_path: Path) -> None:
    seen: list[int] = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with atomic_write(tmp_path / "out") as f:
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            f.write(b"done")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert seen == [signal.SIGTERM] and (tmp_path / "out").read_bytes() == b"done"


def test_outside_the_main_thread_no_handler_is_installed(tmp_path: Path, way: str) -> None:
    import threading

    errors: list[BaseException] = []

    def work() -> None:
        try:
            with atomic_write(tmp_path / "out") as f:
                f.write(b"from a thread")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors and (tmp_path / "out").read_bytes() == b"from a thread"


# -- its users -------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    return build_store(tmp_path / "src" / "cases.db")


@pytest.mark.usefixtures("umask")
def test_an_export_has_the_same_bytes_and_mode_0600(db: Path, tmp_path: Path, way: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "cases.jsonl"
    target.write_bytes(OLD)
    target.chmod(0o644)
    result = run("export", "--db", str(db), "-o", str(target))
    assert result.code == 0, result.text
    assert names(out) == ["cases.jsonl"] and mode_of(target) == 0o600
    text = io.StringIO()
    with SQLiteStore(db, create=False) as store:
        records = [*store.scan("@", "A"), *store.scan(None, "@"), *store.scan("A", None)]
    write_export(records, text)
    assert target.read_bytes() == text.getvalue().encode()
    assert target.read_bytes() == run("export", "--db", str(db)).out.encode()


def test_a_failed_export_leaves_the_old_one(db: Path, tmp_path: Path, way: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "cases.jsonl"
    target.write_bytes(OLD)
    result = run("export", "--db", str(db), "--case", "case-a", "--case", "nope", "-o", str(target))
    assert result.code != 0 and "no case nope" in result.err
    assert names(out) == ["cases.jsonl"] and target.read_bytes() == OLD


@pytest.mark.usefixtures("umask")
def test_a_report_is_0600(db: Path, tmp_path: Path, way: str) -> None:
    target = tmp_path / "case-a.html"
    result = run("report", "case-a", "--db", str(db), "--html", str(target))
    assert result.code == 0, result.text
    assert mode_of(target) == 0o600 and names(tmp_path) == ["case-a.html", "src"]


@pytest.mark.usefixtures("umask")
def test_the_signer_state_is_0600(tmp_path: Path, way: str) -> None:
    path = tmp_path / "signer.state.json"
    path.write_bytes(OLD)
    SignerState(str(path), "a" * 64, {}).save()
    assert mode_of(path) == 0o600 and names(tmp_path) == ["signer.state.json"]
    assert SignerState.load(path, "a" * 64).key == "a" * 64


# -- a real process, killed while it writes --------------------------------------------------------


def big_store(path: Path, copies: int = 1000) -> Path:
    """The four cases of :func:`build_store`, and ``copies`` copies of each under other ids (the
    rows are inserted directly: an export copies, it does not judge)."""
    build_store(path)
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT case_id, seq, hash, body, request_id FROM mediation_events "
            "WHERE case_id NOT LIKE '@%'"
        ).fetchall()
        with conn:
            conn.executemany(
                "INSERT INTO mediation_events (case_id, seq, hash, body, request_id) "
                "VALUES (?, ?, ?, ?, ?)",
                [(f"{c}-{i:04d}", s, h, b, r) for i in range(copies) for c, s, h, b, r in rows],
            )
    finally:
        conn.close()
    return path


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_store(tmp_path_factory.mktemp("big") / "cases.db")


def writing_into(pid: int, directory: Path) -> str | None:
    """The descriptor (``/proc/PID/fd/N``) the process has open on a file in ``directory``."""
    fds = f"/proc/{pid}/fd"
    try:
        entries = os.listdir(fds)
    except OSError:
        return None
    for entry in entries:
        try:
            where = os.readlink(f"{fds}/{entry}")
        except OSError:
            continue
        if where.startswith(f"{directory}{os.sep}"):
            return f"{fds}/{entry}"
    return None


def caught_writing(proc: subprocess.Popen[bytes], directory: Path) -> None:
    """Wait until ``proc`` has written part of its output into ``directory``, and stop it there
    (SIGSTOP): whatever is then sent to it arrives in the middle of the writing."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the export ended ({proc.returncode}) before it could be caught writing")
        fd = writing_into(proc.pid, directory)
        if fd is not None:
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                written = os.stat(fd).st_size
            except OSError:  # the file was closed before the stop
                written = 0
            if written > 0 and writing_into(proc.pid, directory) == fd:
                return
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.0005)
    pytest.fail("the export was never seen writing")


def start_export(db: Path, target: Path, *, fallback: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    env["MEDIATION_LANG"] = "en"
    argv = ["export", "--db", str(db), "-o", str(target)]
    if fallback:  # a system without O_TMPFILE: no /proc to name the file by
        code = (
            "import sys; import mediation._files as m; m._PROC_FD = '/nonexistent'; "
            "from mediation.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        cmd = [sys.executable, "-c", code, *argv]
    else:
        cmd = [sys.executable, "-m", "mediation.cli", *argv]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("existing", [False, True])
def test_kill_9_during_an_export_leaves_no_copy(
    big_db: Path, tmp_path: Path, existing: bool
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    needs_tmpfile(out)
    target = out / "cases.jsonl"
    if existing:
        target.write_bytes(OLD)
    proc = start_export(big_db, target)
    try:
        caught_writing(proc, out)
        # the process is in the middle of writing its export: nothing of it has a name
        assert names(out) == (["cases.jsonl"] if existing else [])
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:  # pragma: no cover - a failed assertion above
            proc.kill()
            proc.wait()
    assert names(out) == (["cases.jsonl"] if existing else [])
    if existing:
        assert target.read_bytes() == OLD


@pytest.mark.parametrize("fallback", [False, True])
def test_sigterm_during_an_export_leaves_no_copy(
    big_db: Path, tmp_path: Path, fallback: bool
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "cases.jsonl"
    target.write_bytes(OLD)
    proc = start_export(big_db, target, fallback=fallback)
    try:
        caught_writing(proc, out)
        if fallback:  # the named temporary file, readable by its owner only
            (tmp,) = (p for p in out.iterdir() if p.name != "cases.jsonl")
            assert tmp.name.startswith(".cases.jsonl.") and mode_of(tmp) == 0o600
        os.kill(proc.pid, signal.SIGTERM)
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:  # pragma: no cover - a failed assertion above
            proc.kill()
            proc.wait()
    assert names(out) == ["cases.jsonl"] and target.read_bytes() == OLD


def test_the_big_export_completes_when_left_alone(big_db: Path, tmp_path: Path) -> None:
    """The store the kill tests use is exported whole, 0600, when nothing interrupts it."""
    target = tmp_path / "cases.jsonl"
    proc = start_export(big_db, target)
    assert proc.wait(timeout=300) == 0
    assert names(tmp_path) == ["cases.jsonl"] and mode_of(target) == 0o600
    lines = target.read_bytes().splitlines()
    conn = sqlite3.connect(big_db)
    try:
        (events,) = conn.execute("SELECT count(*) FROM mediation_events").fetchone()
    finally:
        conn.close()
    assert len(lines) == events + 2 and json.loads(lines[-1])["end"]["events"] == events
