"""Upload checks: kinds by name and first bytes, and the zip traversal / bomb guards."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mu2.web.uploads import (
    UploadLimits,
    UploadRejected,
    check_magic,
    extract_zip,
    safe_stem,
    upload_kind,
)

LIMITS = UploadLimits(max_upload_bytes=10**9, max_unzipped_bytes=10**7, max_zip_entries=100)


def _zip(path: Path, entries: dict[str, bytes], **kw) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, **kw) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ct.nii.gz", "nifti-gz"),
        ("CT.NII", "nifti"),
        ("scan.npy", "numpy"),
        ("series.zip", "zip"),
        ("a.b.nii.gz", "nifti-gz"),
    ],
)
def test_upload_kind(name: str, kind: str) -> None:
    assert upload_kind(name) == kind


@pytest.mark.parametrize("name", ["report.pdf", "scan.npz", "scan", "scan.gz", "x.dcm"])
def test_unknown_kinds_are_415_with_the_accepted_list(name: str) -> None:
    with pytest.raises(UploadRejected, match=r"unsupported file type.*fix: upload .nii") as err:
        upload_kind(name)
    assert err.value.status == 415


def test_magic_bytes(tmp_path: Path) -> None:
    good = {
        "nifti-gz": gzip.compress(b"anything"),
        "numpy": (lambda b: (np.save(b, np.zeros(3)), b.getvalue())[1])(io.BytesIO()),
        "nifti": struct.pack("<i", 348) + b"\0" * 344,
        "zip": _zip(tmp_path / "a.zip", {"a": b"1"}).read_bytes(),
    }
    for kind, data in good.items():
        path = tmp_path / f"ok-{kind}"
        path.write_bytes(data)
        check_magic(path, kind, f"ok.{kind}")  # no error
        bad = tmp_path / f"bad-{kind}"
        bad.write_bytes(b"<html>not a scan</html>")
        with pytest.raises(UploadRejected, match="does not start with") as err:
            check_magic(bad, kind, "scan.nii.gz" if kind == "nifti-gz" else "scan")
        assert err.value.status == 415
    big_endian = tmp_path / "be.nii"
    big_endian.write_bytes(struct.pack(">i", 348) + b"\0" * 344)
    check_magic(big_endian, "nifti", "be.nii")


def test_safe_stem() -> None:
    assert safe_stem("patient 1/../ct.nii.gz") == "patient_1_.._ct"
    assert safe_stem("..nii.gz") == "scan"
    assert safe_stem("Séries.zip") == "S_ries"


def test_zip_with_dicom_folder_returns_the_folder(tmp_path: Path) -> None:
    src = _zip(tmp_path / "s.zip", {"series/1.dcm": b"a", "series/2.dcm": b"b"})
    out = extract_zip(src, tmp_path / "out", LIMITS)
    assert out == tmp_path / "out"
    assert (out / "series" / "2.dcm").read_bytes() == b"b"


def test_zip_with_one_nifti_returns_that_file(tmp_path: Path) -> None:
    src = _zip(tmp_path / "s.zip", {"case/ct.nii.gz": b"x", "case/readme.txt": b"hi"})
    assert extract_zip(src, tmp_path / "out", LIMITS) == tmp_path / "out" / "case" / "ct.nii.gz"


@pytest.mark.parametrize("name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil", "C:\\evil.dcm"])
def test_zip_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    src = _zip(tmp_path / "s.zip", {"ok.dcm": b"a", name: b"b"})
    with pytest.raises(UploadRejected, match="outside the archive") as err:
        extract_zip(src, tmp_path / "out", LIMITS)
    assert err.value.status == 400
    assert not (tmp_path / "evil.dcm").exists()


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "s.zip"
    with zipfile.ZipFile(src, "w") as zf:
        info = zipfile.ZipInfo("link.dcm")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UploadRejected, match="symbolic link"):
        extract_zip(src, tmp_path / "out", LIMITS)


def test_zip_bomb_by_declared_size(tmp_path: Path) -> None:
    src = _zip(tmp_path / "s.zip", {"big.dcm": b"\0" * (LIMITS.max_unzipped_bytes + 1)})
    assert src.stat().st_size < 100_000  # zeros compress about 1000x
    with pytest.raises(UploadRejected, match="zip-bomb guard") as err:
        extract_zip(src, tmp_path / "out", LIMITS)
    assert err.value.status == 413
    assert not (tmp_path / "out" / "big.dcm").exists()


def test_zip_bomb_that_lies_about_its_size(tmp_path: Path) -> None:
    """Declared size patched to 10 bytes: never more than that is written, and it fails."""
    size = LIMITS.max_unzipped_bytes + 1
    data = bytearray(_zip(tmp_path / "s.zip", {"big.dcm": b"\0" * size}).read_bytes())
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    assert struct.unpack_from("<I", data, local + 22)[0] == size
    struct.pack_into("<I", data, local + 22, 10)  # local header: uncompressed size
    struct.pack_into("<I", data, central + 24, 10)  # central directory: uncompressed size
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bytes(data))
    assert zipfile.ZipFile(liar).infolist()[0].file_size == 10
    with pytest.raises(UploadRejected, match="cannot be read") as err:
        extract_zip(liar, tmp_path / "out", LIMITS)
    assert err.value.status == 400
    out = tmp_path / "out" / "big.dcm"
    assert not out.exists() or out.stat().st_size <= 10


def test_zip_entry_count_cap(tmp_path: Path) -> None:
    src = _zip(tmp_path / "s.zip", {f"{i}.dcm": b"a" for i in range(5)})
    limits = UploadLimits(10**9, 10**7, max_zip_entries=4)
    with pytest.raises(UploadRejected, match="5 entries; at most 4") as err:
        extract_zip(src, tmp_path / "out", limits)
    assert err.value.status == 413


def test_zip_encrypted_entry_is_refused(tmp_path: Path) -> None:
    data = bytearray(_zip(tmp_path / "s.zip", {"a.dcm": b"secret"}).read_bytes())
    central = data.find(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, central + 8)[0]
    struct.pack_into("<H", data, central + 8, flags | 0x1)  # "encrypted" bit
    enc = tmp_path / "enc.zip"
    enc.write_bytes(bytes(data))
    with pytest.raises(UploadRejected, match="encrypted"):
        extract_zip(enc, tmp_path / "out", LIMITS)


def test_broken_and_empty_zips(tmp_path: Path) -> None:
    broken = tmp_path / "b.zip"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UploadRejected, match="not a readable zip") as err:
        extract_zip(broken, tmp_path / "out", LIMITS)
    assert err.value.status == 400
    empty = _zip(tmp_path / "e.zip", {})
    with pytest.raises(UploadRejected, match="empty zip"):
        extract_zip(empty, tmp_path / "out2", LIMITS)
