"""Archive extraction that cannot write outside its destination.

A downloaded archive is untrusted input: a member named ``../../.bashrc`` or
``/etc/x``, a link pointing out of the folder, or a device file would let it write
anywhere. `safe_extract` checks every member of a tar or zip archive first and
refuses the whole archive, with a `GankitError` naming the member, before writing
anything. Tar members then go through Python's ``data`` extraction filter as a
second line of defence. (MNIST-family files are gzipped single files, not
archives; CIFAR-10's tarball is extracted by torchvision itself.)
"""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import GankitError


def safe_extract(archive, dest) -> list:
    """Extract a .tar(.gz/.bz2/.xz) or .zip ``archive`` into ``dest``; return the extracted paths.

    Raises `GankitError` (and extracts nothing) when a member would land outside
    ``dest`` (absolute path, ``..``, a link leading out), is a device or FIFO, or
    when the file is not a readable archive.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                _refuse(archive, [(n, "points outside the destination folder") for n in names if _escapes(n, root)])
                zf.extractall(root)
            return [root / n for n in names]
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            _refuse(archive, [(m.name, _filtered(m, root)) for m in members if _filtered(m, root)])
            tar.extractall(root, members=members, filter="data")
        return [root / m.name for m in members]
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise GankitError(f"{archive} is not a readable tar or zip archive ({exc}); download it again") from None
    except OSError as exc:
        raise GankitError(f"cannot extract {archive} into {dest} ({exc.strerror or exc}: {exc.filename}); "
                          f"check the file and that the folder is writable with free space") from None


def _refuse(archive: Path, bad: list) -> None:
    if bad:
        name, reason = bad[0]
        raise GankitError(f"refusing to extract {archive}: member {name!r} {reason}; the archive is damaged or "
                          f"malicious, nothing was extracted")


def _filtered(member: tarfile.TarInfo, root: Path) -> str:
    """Why ``member`` is unsafe, or "" when it is safe: our own name check, then Python's "data" filter
    (which would quietly strip a leading "/" rather than refuse the archive)."""
    if PurePosixPath(member.name).is_absolute():
        return "has an absolute path"
    if _escapes(member.name, root):
        return "points outside the destination folder"
    try:
        tarfile.data_filter(member, str(root))
    except tarfile.FilterError as exc:
        return _reason(exc)
    return ""


def _reason(exc: tarfile.FilterError) -> str:
    if isinstance(exc, tarfile.AbsolutePathError):
        return "has an absolute path"
    if isinstance(exc, (tarfile.OutsideDestinationError, tarfile.AbsoluteLinkError,
                        tarfile.LinkOutsideDestinationError)):
        return "points outside the destination folder"
    if isinstance(exc, tarfile.SpecialFileError):
        return "is a device or FIFO"
    return f"is not allowed ({exc})"


def _escapes(name: str, root: Path) -> bool:
    """True for absolute names, drive letters, backslash tricks or '..' that leave ``root``."""
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return True
    if ".." in PureWindowsPath(name).parts:  # also catches "..\\x", which Windows tools would follow
        return True
    target = (root / name).resolve()
    return target != root and root not in target.parents
