"""Uploads of CT scans: size and type limits, safe unzipping, a private folder per request.

A request is refused before any model work when it is too large (413), of a type mu2
cannot read (415) or a zip that is unsafe (path traversal, links, encrypted entries: 400;
too many entries or too much unpacked data, i.e. a zip bomb: 413). Each accepted upload
lives in its own ``mkdtemp`` folder (mode 0700), removed when the request ends.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from mu2.errors import Mu2Error

log = logging.getLogger(__name__)

ACCEPTED = ".nii, .nii.gz, .npy, or a .zip of one DICOM series"
# File name ending -> kind; the first bytes must match the kind (checked by `check_magic`).
KINDS: dict[str, str] = {".nii.gz": "nifti-gz", ".nii": "nifti", ".npy": "numpy", ".zip": "zip"}
SCAN_SUFFIXES = (".nii.gz", ".nii", ".npy")
GZIP_MAGIC = b"\x1f\x8b"
NUMPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with entries, an empty zip
NIFTI_HEADER_SIZES = (348, 540)  # sizeof_hdr of NIfTI-1 and NIfTI-2, either byte order
FORM_FIELDS = ("question", "region", "heatmap", "force", "allow_non_ct")
MAX_FIELD_BYTES = 4096  # a question is a sentence
COPY_CHUNK = 1024 * 1024


class UploadRejected(Mu2Error):
    """A request refused before any model work; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, *, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    max_upload_bytes: int
    max_unzipped_bytes: int
    max_zip_entries: int
    max_unzip_ratio: float = 8.0
    """A zip unpacks to at most this many times its own size."""
    min_free_disk_bytes: int = 0
    """Free space the temp folder must keep after an upload (507 otherwise)."""


class DiskBudget:
    """Bytes that requests unpacking at the same time may claim in total (thread-safe):
    each zip reserves its declared unpacked size (under a key, its folder) before writing
    and releases it when that folder is removed, so concurrent zips cannot add up past
    the cap."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return sum(self._held.values())

    def reserve(self, key: str, n: int, name: str) -> None:
        with self._lock:
            used = sum(self._held.values())
            if used + n > self.total:
                raise UploadRejected(
                    503,
                    f"'{name}' needs {_mb(n)} unpacked, but uploads being unpacked already "
                    f"hold {_mb(used)} of the {_mb(self.total)} the server allows",
                    fix="retry in a minute",
                )
            self._held[key] = n

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)


def check_free_disk(folder: Path, need: int, limits: UploadLimits, name: str) -> None:
    """507 when writing ``need`` bytes would leave less than ``min_free_disk_bytes`` free."""
    free = shutil.disk_usage(folder).free
    if free - need < limits.min_free_disk_bytes:
        raise UploadRejected(
            507,
            f"not enough free disk space for '{name}' ({_mb(need)} needed, {_mb(free)} free)",
            fix="retry later; the server's temp folder is full",
        )


@dataclass
class Upload:
    """One uploaded scan in its private folder: ``scan`` is what `mu2.io.load_ct` reads."""

    filename: str
    kind: str
    scan: Path
    workdir: Path
    fields: dict[str, str] = field(default_factory=dict)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def safe_stem(filename: str) -> str:
    """A safe download name from the uploaded file's name."""
    name = filename
    for suffix in KINDS:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "scan"


def upload_kind(filename: str) -> str:
    """Kind of an upload from its name; 415 for anything mu2 does not read."""
    name = filename.lower()
    for suffix, kind in KINDS.items():
        if name.endswith(suffix):
            return kind
    shown = PurePosixPath(filename).suffix or "(no extension)"
    raise UploadRejected(
        415,
        f"unsupported file type {shown!r} for '{filename}'",
        fix=f"upload {ACCEPTED}",
    )


def check_magic(path: Path, kind: str, filename: str) -> None:
    """The first bytes must match the name: a renamed file gets 415, not a reader crash."""
    with path.open("rb") as fh:
        head = fh.read(8)
    suffix = next((s for s in KINDS if filename.lower().endswith(s)), kind)
    if kind == "nifti":
        ok = len(head) >= 4 and any(
            int.from_bytes(head[:4], order) in NIFTI_HEADER_SIZES for order in ("little", "big")
        )
        what = "a NIfTI header"
    elif kind == "nifti-gz":
        ok, what = head.startswith(GZIP_MAGIC), "gzip data"
    elif kind == "numpy":
        ok, what = head.startswith(NUMPY_MAGIC), "a NumPy .npy header"
    else:
        ok, what = head.startswith(ZIP_MAGICS), "a zip archive"
    if not ok:
        raise UploadRejected(
            415,
            f"'{filename}' ends in {suffix} but does not start with {what}",
            fix=f"upload the file itself ({ACCEPTED}), not a renamed or truncated copy",
        )


def _safe_target(dest: Path, name: str) -> Path:
    """Where a zip entry may be written, or 400 when its name leaves ``dest``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (
        not parts
        or name.startswith(("/", "\\"))
        or ".." in parts
        or (parts[0].endswith(":"))  # C:\... (a Windows drive)
    ):
        raise UploadRejected(
            400,
            f"zip entry '{name}' points outside the archive (path traversal)",
            fix="zip the DICOM folder with relative paths only",
        )
    target = dest.joinpath(*parts).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise UploadRejected(400, f"zip entry '{name}' points outside the archive")
    return target


def extract_zip(
    path: Path,
    dest: Path,
    limits: UploadLimits,
    filename: str = "",
    budget: DiskBudget | None = None,
) -> Path:
    """Unpack a zipped series into ``dest`` with the traversal and zip-bomb checks.

    The declared sizes are checked first (cheap), against the smaller of
    ``max_unzipped_bytes`` and ``max_unzip_ratio`` times the zip's own size, against the
    free disk space, and reserved in ``budget`` (shared by concurrent requests; the
    caller releases it). An entry that inflates past its declared size is cut there by
    ``zipfile`` and fails its CRC (400); the bytes written are counted against the cap
    as well, so the guard does not rest on that alone.
    """
    name = filename or path.name
    cap = min(limits.max_unzipped_bytes, int(limits.max_unzip_ratio * path.stat().st_size))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UploadRejected(
            400, f"'{name}' is not a readable zip archive ({err})", fix="zip the folder again"
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_zip_entries:
            raise UploadRejected(
                413,
                f"'{name}' holds {len(infos)} entries; at most {limits.max_zip_entries} accepted",
                fix="upload one DICOM series per zip",
            )
        files = [i for i in infos if not i.is_dir()]
        if not files:
            raise UploadRejected(400, f"'{name}' is an empty zip", fix="zip the DICOM folder")
        declared = sum(i.file_size for i in files)
        if declared > cap:
            raise UploadRejected(
                413,
                f"'{name}' unpacks to {_mb(declared)}, more than the {_mb(cap)} accepted "
                f"(at most {limits.max_unzip_ratio:g}x the zip and {_mb(limits.max_unzipped_bytes)}"
                "; zip-bomb guard)",
                fix="upload one series per zip (the server's max_unzipped_bytes and "
                "max_unzip_ratio settings set the limit)",
            )
        check_free_disk(dest.parent, declared, limits, name)
        if budget is not None:
            budget.reserve(str(dest), declared, name)
        written = 0
        for info in files:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UploadRejected(400, f"zip entry '{info.filename}' is a symbolic link")
            if info.flag_bits & 0x1:
                raise UploadRejected(
                    400,
                    f"zip entry '{info.filename}' is encrypted",
                    fix="zip it without a password",
                )
            target = _safe_target(dest, info.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, target.open("wb") as out:
                    while chunk := src.read(COPY_CHUNK):
                        written += len(chunk)
                        if written > min(cap, declared):
                            raise UploadRejected(
                                413,
                                f"'{name}' inflates past the {_mb(min(cap, declared))} it "
                                "declares (zip-bomb guard)",
                                fix="zip the series again with a standard zip tool",
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
                raise UploadRejected(
                    400, f"zip entry '{info.filename}' cannot be read ({err})"
                ) from None
    return _scan_in(dest)


def _scan_in(folder: Path) -> Path:
    """What to read from an unpacked zip: its one NIfTI/NumPy file, else the DICOM folder."""
    scans = [p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(SCAN_SUFFIXES)]
    return scans[0] if len(scans) == 1 else folder


def _limited_receive(
    receive: Callable[[], Awaitable[dict[str, Any]]], cap: int
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` that counts body bytes and stops the request past ``cap``.

    Content-Length is checked before this, but a chunked body has none.
    """
    seen = 0

    async def receive_limited() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise UploadRejected(
                    413,
                    f"upload larger than the {_mb(cap)} accepted",
                    fix="upload a smaller scan (the server's max_upload_bytes setting sets the limit)",
                )
        return message

    return receive_limited


def _copy(src: Any, dest: Path) -> None:
    with dest.open("wb") as out:
        shutil.copyfileobj(src, out, COPY_CHUNK)


@contextlib.asynccontextmanager
async def receive_upload(
    request: Request, limits: UploadLimits, budget: DiskBudget | None = None
) -> AsyncIterator[Upload]:
    """Parse the multipart body into a private folder; the folder goes when the block ends.

    Starlette spools the file part into an anonymous temporary file; it is copied into
    the request's own folder because the CT readers need a path.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UploadRejected(
            415,
            f"expected a multipart/form-data upload, got '{content_type or 'no content type'}'",
            fix="POST the scan as form field 'file' (curl -F file=@scan.nii.gz)",
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_upload_bytes:
        raise UploadRejected(
            413,
            f"upload of {_mb(int(length))} is larger than the {_mb(limits.max_upload_bytes)} "
            "accepted",
            fix="upload a smaller scan (the server's max_upload_bytes setting sets the limit)",
        )
    tmp_root = Path(tempfile.gettempdir())
    expected = int(length) if length is not None and length.isdigit() else limits.max_upload_bytes
    check_free_disk(tmp_root, expected, limits, "the upload")
    limited = Request(request.scope, _limited_receive(request.receive, limits.max_upload_bytes))
    workdir = Path(tempfile.mkdtemp(prefix="mu2-upload-"))
    try:
        async with limited.form(
            max_files=1, max_fields=len(FORM_FIELDS), max_part_size=MAX_FIELD_BYTES
        ) as form:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise UploadRejected(
                    400,
                    "no file in the upload",
                    fix="send the scan as form field 'file' (curl -F file=@scan.nii.gz)",
                )
            fields = {k: v for k, v in form.items() if k in FORM_FIELDS and isinstance(v, str)}
            filename = PurePosixPath((file.filename or "").replace("\\", "/")).name
            kind = upload_kind(filename)
            # The readers choose by the ending; the name is the user's, made safe.
            suffix = next(s for s in KINDS if filename.lower().endswith(s))
            path = workdir / f"{safe_stem(filename)}{suffix}"
            await run_in_threadpool(_copy, file.file, path)
        check_magic(path, kind, filename)
        scan = path
        if kind == "zip":
            scan = await run_in_threadpool(
                extract_zip, path, workdir / "unzipped", limits, filename, budget
            )
            path.unlink()  # the archive is no longer needed once unpacked
        yield Upload(filename=filename, kind=kind, scan=scan, workdir=workdir, fields=fields)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if budget is not None:
            budget.release(str(workdir / "unzipped"))
