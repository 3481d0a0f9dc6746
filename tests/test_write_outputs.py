"""How outputs reach the disk: in place when that is safe, through a rename otherwise, never torn."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from updater import render
from updater.errors import TemplateError
from updater.render import Rendered, Workspace, write_output


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_existing_output_is_overwritten_in_place_and_truncated(tmp_path: Path) -> None:
    out = tmp_path / "deployment.yaml"
    out.write_bytes(b"image: old-and-much-longer-than-the-new-one\n")
    inode = out.stat().st_ino
    write_output(str(out), b"image: new\n")
    assert out.read_bytes() == b"image: new\n"
    assert out.stat().st_ino == inode


@pytest.mark.parametrize("old_mode", [0o600, 0o755, 0o664])
def test_an_overwritten_output_gets_mode_0644_whatever_it_had(tmp_path: Path, old_mode: int) -> None:
    out = tmp_path / "values.yaml"
    out.write_bytes(b"a: 1\n")
    out.chmod(old_mode)
    write_output(str(out), b"a: 2\n")
    assert mode_of(out) == 0o644
    assert out.read_bytes() == b"a: 2\n"


def test_a_new_output_is_created_with_mode_0644_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_output(str(tmp_path / "new.yaml"), b"kind: ConfigMap\n")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "new.yaml") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["new.yaml"]  # no temporary file left


def test_a_hard_linked_output_is_replaced_not_written_through(tmp_path: Path) -> None:
    out = tmp_path / "app.yaml"
    out.write_bytes(b"replicas: 1\n")
    elsewhere = tmp_path / "elsewhere.yaml"
    os.link(out, elsewhere)
    write_output(str(out), b"replicas: 3\n")
    assert out.read_bytes() == b"replicas: 3\n"
    assert elsewhere.read_bytes() == b"replicas: 1\n"  # the other name still holds what it held
    assert out.stat().st_nlink == 1


def rendered(tmp_path: Path, name: str, old: bytes | None, new: bytes) -> Rendered:
    if old is not None:
        (tmp_path / name).write_bytes(old)
    return Rendered(f"{name}.tmpl", name, new, old)


def test_a_write_failing_halfway_puts_every_output_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        rendered(tmp_path, "a.yaml", b"a: old\n", b"a: new\n"),
        rendered(tmp_path, "b.yaml", b"b: old, long enough to be torn\n", b"b: new\n"),
        rendered(tmp_path, "c.yaml", None, b"c: new\n"),
    ]
    real_pwrite = os.pwrite

    def disk_full_after_a_few_bytes(fd: int, data: bytes | memoryview, offset: int) -> int:
        if bytes(data).startswith(b"b: new"):
            real_pwrite(fd, bytes(data)[:3], offset)  # the start of b is on disk when the disk fills up
            raise OSError(28, "No space left on device", "b.yaml")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(render.os, "pwrite", disk_full_after_a_few_bytes)
    with pytest.raises(TemplateError, match=r"No space left on device.*nothing was changed"):
        Workspace(str(tmp_path), str(tmp_path)).write(items)
    monkeypatch.undo()
    assert (tmp_path / "a.yaml").read_bytes() == b"a: old\n"
    assert (tmp_path / "b.yaml").read_bytes() == b"b: old, long enough to be torn\n"
    assert not (tmp_path / "c.yaml").exists()


def test_sigterm_during_the_writes_waits_until_every_output_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [rendered(tmp_path, f"{n}.yaml", b"old\n", f"new {n}\n".encode()) for n in range(5)]
    seen_at_signal: list[list[bytes]] = []

    def on_term(signum: int, frame: object) -> None:
        seen_at_signal.append([(tmp_path / f"{n}.yaml").read_bytes() for n in range(5)])

    writes = 0
    real_write_output = render.write_output

    def signalled_during_the_first_write(path: str, content: bytes, *args: object, **kwargs: object) -> None:
        nonlocal writes
        writes += 1
        if writes == 1:
            # A CI runner cancelling the job. The tool is single-threaded, so its main thread is the one
            # a kill reaches; aim there, as pytest-xdist's workers have other threads.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
        real_write_output(path, content)  # in place, as the other arguments would have it here

    old_handler = signal.signal(signal.SIGTERM, on_term)
    try:
        monkeypatch.setattr(render, "write_output", signalled_during_the_first_write)
        Workspace(str(tmp_path), str(tmp_path)).write(items)
    finally:
        signal.signal(signal.SIGTERM, old_handler)
    # Delivered once, and only after the last output was complete.
    assert seen_at_signal == [[f"new {n}\n".encode() for n in range(5)]]


def test_outputs_that_cannot_be_put_back_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [
        rendered(tmp_path, "a.yaml", b"a: old\n", b"a: new\n"),
        rendered(tmp_path, "b.yaml", b"b: old\n", b"b: new\n"),
    ]
    real_open = os.open
    read_only = False

    def remounted_read_only_at_b(path: str, flags: int, mode: int = 0o777) -> int:
        nonlocal read_only
        read_only = read_only or str(path).endswith("b.yaml")
        if read_only and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(render.os, "open", remounted_read_only_at_b)
    with pytest.raises(TemplateError, match=r"Read-only file system.*could not put back: a\.yaml$"):
        Workspace(str(tmp_path), str(tmp_path)).write(items)
    monkeypatch.undo()
    assert (tmp_path / "b.yaml").read_bytes() == b"b: old\n"


@pytest.mark.timeout(20)
def test_a_fifo_swapped_in_after_rendering_is_replaced_not_waited_on(tmp_path: Path) -> None:
    out = tmp_path / "deployment.yaml"
    os.mkfifo(out)  # nobody reads it: opening it for writing would block forever
    write_output(str(out), b"kind: Deployment\n")
    assert stat.S_ISREG(out.lstat().st_mode)
    assert out.read_bytes() == b"kind: Deployment\n"


def test_a_bind_mounted_output_is_not_written_through(tmp_path: Path) -> None:
    # A file mounted over an output (a subPath-mounted ConfigMap in a pipeline's workspace): writing
    # it in place would change the mount's source outside the repository.
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(b"image: outside\n")
    repo = tmp_path / "repo"
    out = repo / "app" / "config.yaml"
    out.parent.mkdir(parents=True)
    out.write_bytes(b"image: old\n")
    mounted = subprocess.run(["mount", "--bind", str(outside), str(out)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(TemplateError, match="cannot write outputs"):
            Workspace(str(repo), str(repo)).write(
                [Rendered("app/config.yaml.tmpl", "app/config.yaml", b"image: new\n", b"image: outside\n")]
            )
        assert outside.read_bytes() == b"image: outside\n"
    finally:
        subprocess.run(["umount", str(out)], check=True)


def test_a_torn_output_that_cannot_be_undone_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [rendered(tmp_path, "torn.yaml", b"image: old-and-long\n", b"kind: new\n")]
    real_pwrite = os.pwrite
    broken = False

    def device_fails_halfway(fd: int, data: bytes | memoryview, offset: int) -> int:
        nonlocal broken
        if not broken:
            broken = True
            real_pwrite(fd, bytes(data)[:4], offset)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(render.os, "pwrite", device_fails_halfway)
    with pytest.raises(TemplateError) as raised:
        Workspace(str(tmp_path), str(tmp_path)).write(items)
    assert (
        str(raised.value)
        == "cannot write outputs (Input/output error: torn.yaml); could not put back: torn.yaml"
    )
