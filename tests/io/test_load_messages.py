"""load_ct's one-line messages, word for word: which file, what is wrong, how to fix it.

Each bad file is written here with the library that owns the format (nibabel, numpy,
gzip, zipfile), or cut / corrupted from a good one. The messages are the project's
interface for bad input (the CLI prints them and exits 2), so their text is asserted.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import mu2
from mu2.errors import Mu2Error
from mu2.io import NotCTWarning, load_ct
from mu2.io.nifti import read_nifti
from mu2.io.testing import write_dicom_series

SUPPORTED = ".nii, .nii.gz, .npy, .npz, a DICOM file (.dcm) or a folder of DICOM slices"
CORRUPT_FIX = "re-export or re-download the file; check that the copy finished"
NOT_NIFTI_FIX = "pass a real .nii/.nii.gz volume (is it a text or HTML file saved with that name?)"
NOT_DICOM = "not a DICOM image file -- fix: pass the folder that holds the .dcm slices of one CT series"


def _message(path: Path, **kwargs) -> str:
    with pytest.raises(Mu2Error) as info:
        load_ct(path, **kwargs)
    return str(info.value)


@pytest.fixture(scope="module")
def good_nii(tmp_path_factory) -> Path:
    """An uncompressed int16 NIfTI of 40 x 30 x 70 voxels (70 slices: three read slabs)."""
    arr = np.full((40, 30, 70), -1000, np.int16)
    arr[5:20, 5:20, 5:60] = 40
    path = tmp_path_factory.mktemp("good") / "good.nii"
    nib.save(nib.Nifti1Image(arr, np.diag([0.8, 0.8, 2.5, 1.0])), str(path))
    return path


def test_uncompressed_nii_loads(good_nii):
    vol = load_ct(good_nii)
    np.testing.assert_array_equal(vol.array, np.asanyarray(nib.load(str(good_nii)).dataobj))
    assert vol.meta["format"] == "nifti" and vol.spacing == pytest.approx((0.8, 0.8, 2.5))


def test_missing_and_empty_files(tmp_path):
    missing = tmp_path / "nothing.nii.gz"
    assert _message(missing) == f"{missing}: no such file or folder -- fix: check the path and spelling"
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    assert _message(empty) == f"{empty}: file is empty (0 bytes) -- fix: copy or export it again"
    one = tmp_path / "one.nii.gz"  # one byte is not "empty": the NIfTI reader judges it
    one.write_bytes(b"x")
    assert "not a NIfTI file" in _message(one)


def test_symbolic_link_loop_and_dangling_link(tmp_path):
    loop = tmp_path / "loop.nii.gz"
    loop.symlink_to(loop)
    assert _message(loop) == (
        f"{loop}: symbolic link loop (the link points back to itself) -- fix: point the link "
        "at the real file, or pass the file itself"
    )
    dangling = tmp_path / "scan.nii.gz"
    dangling.symlink_to(tmp_path / "moved" / "scan.nii.gz")
    assert _message(dangling) == (
        f"{dangling}: symbolic link to a missing file ({tmp_path / 'moved' / 'scan.nii.gz'}) -- "
        "fix: point the link at the real file, or pass the file itself"
    )


def test_unknown_extension_names_all_its_suffixes(tmp_path):
    bad = tmp_path / "scan.tar.gz"
    bad.write_bytes(b"x" * 100)
    assert _message(bad) == f"{bad}: unknown file type '.tar.gz' -- fix: pass one of: {SUPPORTED}"


@pytest.mark.parametrize("name", ["garbage.dcm", "scan"])
def test_dcm_and_suffixless_files_go_to_the_dicom_reader(tmp_path, name):
    """A .dcm, or a file without a suffix (common for DICOM exports), is judged as DICOM."""
    bad = tmp_path / name
    bad.write_text("hello, not a DICOM file\n" * 10)
    assert _message(bad) == f"{bad}: {NOT_DICOM}"


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("notes.nii", b"<html>404 Not Found</html>\n" * 20, "no NIfTI header"),
        ("packed.nii", gzip.compress(b"<html>404</html>\n" * 40), "gzip data, but not named .gz"),
        ("plain.nii.gz", b"<html>404 Not Found</html>\n" * 20, "not gzip data"),
    ],
)
def test_not_a_nifti_says_why(tmp_path, name, content, what):
    bad = tmp_path / name
    bad.write_bytes(content)
    assert _message(bad) == (
        f"{bad}: not a NIfTI file ({what}, although named {name}) -- fix: {NOT_NIFTI_FIX}"
    )


def test_corrupt_compressed_header(tmp_path, good_nii):
    blob = bytearray(gzip.compress(good_nii.read_bytes()))
    blob[20:28] = bytes(b ^ 0xFF for b in blob[20:28])  # inside the deflate stream
    bad = tmp_path / "corrupt.nii.gz"
    bad.write_bytes(bytes(blob))
    message = _message(bad)
    assert message.startswith(f"{bad}: NIfTI header is truncated or corrupt (Error -3 while")
    assert message.endswith(f") -- fix: {CORRUPT_FIX}") and "\n" not in message


def test_corrupt_header_field(tmp_path, good_nii):
    """dim[0] (the rank, bytes 40-41) out of range: nibabel's header check fails."""
    blob = bytearray(good_nii.read_bytes())
    blob[40:42] = struct.pack("<h", 9)
    bad = tmp_path / "rank.nii"
    bad.write_bytes(bytes(blob))
    assert _message(bad) == (
        f"{bad}: NIfTI header is truncated or corrupt "
        f"(vox offset 0 too low for single file nifti1) -- fix: {CORRUPT_FIX}"
    )


def test_truncated_nii_counts_the_header_bytes(tmp_path, good_nii):
    """The size check needs the voxel offset (352) plus the voxels: the good file's size."""
    need = good_nii.stat().st_size
    assert need == 352 + 40 * 30 * 70 * 2
    bad = tmp_path / "cut.nii"
    bad.write_bytes(good_nii.read_bytes()[:-10])
    assert _message(bad) == (
        f"{bad}: file holds {need - 10:,} bytes but its header needs {need:,} (truncated)"
        f" -- fix: {CORRUPT_FIX}"
    )


def test_truncated_compressed_voxels(tmp_path, good_nii):
    blob = gzip.compress(good_nii.read_bytes())
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(blob[: len(blob) // 2])
    assert _message(bad) == (
        f"{bad}: voxel data is truncated or corrupt (Compressed file ended before the "
        f"end-of-stream marker was reached) -- fix: {CORRUPT_FIX}"
    )


def test_npz_with_a_bad_checksum_is_one_line(tmp_path):
    """zipfile's CRC check fails inside numpy's reader: the generic catch words it."""
    good = tmp_path / "good.npz"
    np.savez(good, array=np.zeros((4, 4, 4)))
    blob = bytearray(good.read_bytes())
    blob[60:70] = b"\xff" * 10  # inside the stored (uncompressed) member
    bad = tmp_path / "crc.npz"
    bad.write_bytes(bytes(blob))
    assert _message(bad) == (
        f"{bad}: could not read the numpy file (BadZipFile: Bad CRC-32 for file 'array.npy')"
        f" -- fix: check the file is complete and in a supported format: {SUPPORTED}"
    )


def test_out_of_memory_is_one_line(tmp_path):
    """A header that passes the caps but whose voxels do not fit: a real MemoryError,
    from an address-space limit in a child process (the file is sparse on disk)."""
    path = tmp_path / "big.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), str(path))
    img = nib.load(str(path))
    header = img.header.copy()
    header.set_data_shape((1024, 1024, 1024))  # 4 GiB of float32 once read
    with open(path, "wb") as fh:
        fh.write(header.binaryblock + b"\0" * 4)
        fh.truncate(352 + 2 * 1024**3)
    script = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, resource.RLIM_INFINITY))
        from mu2.errors import Mu2Error
        from mu2.io import load_ct
        try:
            load_ct({str(path)!r}, max_voxels=2 * 1024**3)
        except Mu2Error as err:
            print(err)
        """
    )
    # in this process the voxel cap refuses the same header before any allocation
    assert "over the memory cap of 1,000,000 voxels" in _message(path, max_voxels=10**6)
    # the child imports the same mu2 as this process (also a mutated copy under test)
    env = {**os.environ, "PYTHONPATH": str(Path(mu2.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == (
        f"{path}: not enough memory to read this volume -- fix: free memory, or lower the cap "
        "(--max-voxels) to refuse such files early"
    ), done.stderr[-2000:]


def test_dicom_that_names_its_modality_is_not_judged_by_its_values(tmp_path):
    """An MR series read with allow_non_ct: its header says MR, so no HU warning is added
    (only files without a modality are judged by their value range)."""
    mr = np.random.default_rng(0).integers(0, 800, (16, 16, 6)).astype(np.float32)
    folder = write_dicom_series(tmp_path / "mr", mr, (1.0, 1.0, 2.0), modality="MR", intercept=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotCTWarning)
        vol = load_ct(folder, allow_non_ct=True)
    assert vol.meta["modality"] == "MR" and vol.meta["warnings"] == []
    # the same values without a modality (a .npy) are flagged
    np.save(tmp_path / "mr.npy", mr)
    with pytest.warns(NotCTWarning, match="does not look like CT"):
        load_ct(tmp_path / "mr.npy")


# --- NIfTI header checks, before any voxel is read ---------------------------------------


def _raw_nii(path: Path, header: nib.Nifti1Header, data: np.ndarray) -> Path:
    """Header bytes + 4 empty extension bytes + Fortran-ordered voxels: a .nii that
    nibabel's writer would refuse to produce (it checks the affine first)."""
    path.write_bytes(header.binaryblock + b"\0" * 4 + data.tobytes(order="F"))
    return path


def test_zero_axis_affine_is_named_as_the_qform_sform(tmp_path):
    data = np.zeros((8, 8, 8), np.int16)
    header = nib.Nifti1Image(data, np.eye(4)).header.copy()
    flat = np.eye(4)
    flat[1, 1] = 0.0  # the j axis has no length
    header.set_sform(flat, code=1)
    header["qform_code"] = 0
    bad = _raw_nii(tmp_path / "flat.nii", header, data)
    assert _message(bad) == (
        f"{bad}: voxel spacing 1 x 0 x 1 mm has a zero axis (the qform/sform affine) -- fix: "
        "repair the geometry (e.g. set a valid qform/sform or PixelSpacing) and export again"
    )


def test_complex_voxels_are_refused(tmp_path):
    bad = tmp_path / "complex.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.complex64), np.eye(4)), str(bad))
    assert _message(bad) == (
        f"{bad}: voxels are complex numbers (complex64), not CT intensities -- fix: pass the "
        "magnitude image in Hounsfield units"
    )


def test_compressed_header_that_claims_far_more_voxels_than_stored(tmp_path):
    """A 1 GiB int16 header over a few hundred gzip bytes: refused before decompressing."""
    header = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)).header.copy()
    header.set_data_shape((1024, 1024, 512))
    bad = tmp_path / "bomb.nii.gz"
    bad.write_bytes(gzip.compress(header.binaryblock + b"\0" * 100_004))
    stored = bad.stat().st_size
    message = _message(bad, max_voxels=2**31)
    assert message.startswith(f"{bad}: {stored:,}-byte file claims 1,024 MiB of voxels (")
    assert "a compression bomb -- fix: check the file is a complete CT export" in message


def test_memory_budget_is_checked_on_the_header(real_ct_path):
    message = _message(real_ct_path, max_memory_bytes=2**20)
    assert message.startswith(
        f"{real_ct_path}: header asks for 122 x 101 x 112 voxels; a report on it needs about"
    )
    assert "over the memory budget of 0.0 GiB" in message


def test_read_nifti_returns_float32_in_file_order(good_nii):
    data, affine, meta = read_nifti(good_nii, 10**9)
    raw = nib.load(str(good_nii))
    assert data.dtype == np.float32 and affine.dtype == np.float64
    np.testing.assert_array_equal(data, np.asanyarray(raw.dataobj).astype(np.float32))
    assert meta == {"path": str(good_nii), "format": "nifti", "modality": None}


@pytest.mark.parametrize("kind", ["npy", "dicom"])
def test_memory_budget_reaches_every_reader(tmp_path, data_dir, kind):
    if kind == "npy":
        path = tmp_path / "v.npy"
        np.save(path, np.full((64, 64, 32), -1000, np.int16))
    else:
        path = data_dir / "real-ct" / "example_ct_dicom"
    message = _message(path, max_memory_bytes=2**20)
    assert message.startswith(f"{path}: header asks for ") and "over the memory budget" in message


def test_npz_with_a_nan_spacing_fails_the_geometry_check(tmp_path):
    bad = tmp_path / "nan.npz"
    np.savez(bad, array=np.full((8, 8, 8), -1000, np.int16), spacing=np.array([np.nan, 1, 1]))
    assert _message(bad) == (
        f"{bad}: affine is not a finite 4x4 matrix -- fix: repair the geometry (e.g. set a "
        "valid qform/sform or PixelSpacing) and export again"
    )
