"""The bad-input corpus: every kind of broken, hostile or odd scan, built at test time.

Each case is a builder that writes one file or folder and an expectation: ``error``
(every reader answers exit 2 / HTTP 4xx with one line naming the file and a fix) or
``accept`` (read on purpose, with the reason documented here). Nothing is committed as a
binary; the tests in this folder run every case through `mu2 inspect`, `mu2 report`,
`mu2 data check` and the web service.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from mu2.io.testing import write_dicom_series


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: str  # "error" or "accept"
    note: str = ""  # what the message must contain (error) or why it is accepted
    upload: bool = True  # the web service takes it (.nii, .nii.gz, .npy, zipped DICOM)


CASES: dict[str, Case] = {}


def case(expect: str, note: str = "", upload: bool = True):
    def register(fn: Callable[[Path], Path]) -> Callable[[Path], Path]:
        CASES[fn.__name__] = Case(fn.__name__, fn, expect, note, upload)
        return fn

    return register


def _ct(shape=(16, 16, 12), seed: int = 0) -> np.ndarray:
    """Air with a soft-tissue box and some bone: plausible HU."""
    rng = np.random.default_rng(seed)
    vol = np.full(shape, -1000.0, np.float32)
    inner = tuple(slice(s // 4, s - s // 4) for s in shape[:3])
    vol[inner] = 40.0 + rng.normal(0, 10, vol[inner].shape)
    return vol


def _nii(path: Path, data: np.ndarray, affine=None, dtype=None) -> Path:
    img = nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0]) if affine is None else affine)
    if dtype is not None:
        img.set_data_dtype(dtype)
    nib.save(img, str(path))
    return path


def _nii_sform(path: Path, data: np.ndarray, sform: np.ndarray) -> Path:
    """A NIfTI whose only geometry is ``sform`` written as is (nibabel would refuse to
    derive a qform from a broken matrix)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(data.dtype)
    hdr.set_data_shape(data.shape)
    sform = np.asarray(sform, dtype=np.float64)
    hdr["srow_x"], hdr["srow_y"], hdr["srow_z"] = sform[0], sform[1], sform[2]
    hdr["sform_code"], hdr["qform_code"] = 1, 0
    nib.save(nib.Nifti1Image(data, None, header=hdr), str(path))
    return path


def _header_gz(path: Path, shape, dtype=np.int16, payload: bytes = b"", level: int = 9) -> Path:
    """A .nii.gz whose header claims ``shape`` followed by ``payload`` only."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape(shape)
    hdr.set_zooms((1.0,) * len(shape))
    with gzip.open(path, "wb", compresslevel=level) as fh:
        hdr.write_to(fh)
        fh.write(b"\0" * 4 + payload)
    return path


def _series(folder: Path, n: int = 6, **kw) -> Path:
    return write_dicom_series(folder, _ct((16, 16, n)), (1.0, 1.0, 2.0), **kw)


def _edit_slices(folder: Path, edit: Callable[[int, pydicom.Dataset], None]) -> Path:
    for i, f in enumerate(sorted(folder.glob("*.dcm"))):
        ds = pydicom.dcmread(f)
        edit(i, ds)
        ds.save_as(f, enforce_file_format=True)
    return folder


# -- NIfTI ---------------------------------------------------------------------------------
@case("error", "truncated")
def nii_gz_truncated(d: Path) -> Path:
    blob = _nii(d / "full.nii.gz", _ct((32, 32, 24))).read_bytes()
    (d / "full.nii.gz").unlink()
    (d / "truncated.nii.gz").write_bytes(blob[: len(blob) // 2])
    return d / "truncated.nii.gz"


@case("error", "truncated")
def nii_gz_header_only_72_bytes(d: Path) -> Path:
    p = _header_gz(d / "h.nii.gz", (512, 512, 1024))
    p.write_bytes(p.read_bytes()[:72])
    return p


def gz_bomb(path: Path, shape=(512, 512, 1024)) -> Path:
    """A valid .nii.gz of a constant int16 volume, about 0.5 MB, that inflates to 512 MiB:
    one 16 MiB gzip member of zeros repeated (concatenated members are one valid stream)."""
    zeros = gzip.compress(b"\0" * (1 << 24), compresslevel=9)
    need = int(np.prod(shape)) * 2
    _header_gz(path, shape)  # header + extension flag
    with path.open("ab") as fh:
        for _ in range(need // (1 << 24)):
            fh.write(zeros)
    return path


@case("error", "compression bomb")
def nii_gz_bomb_512x512x1024(d: Path) -> Path:
    return gz_bomb(d / "bomb.nii.gz")


@case("error", "memory cap")
def nii_gz_huge_header(d: Path) -> Path:
    return _header_gz(d / "huge.nii.gz", (4096, 4096, 4096), payload=b"\0" * 1024)


@case("error", "truncated")
def nii_uncompressed_truncated(d: Path) -> Path:
    p = _nii(d / "scan.nii", _ct((32, 32, 24)))
    p.write_bytes(p.read_bytes()[:5000])
    return p


@case("error", "empty")
def zero_byte(d: Path) -> Path:
    (d / "empty.nii.gz").write_bytes(b"")
    return d / "empty.nii.gz"


@case("error", "not a NIfTI")
def html_as_nii_gz(d: Path) -> Path:
    (d / "notes.nii.gz").write_text("<html><body>404 Not Found</body></html>\n")
    return d / "notes.nii.gz"


@case("error", "not a NIfTI")
def random_bytes_nii_gz(d: Path) -> Path:
    (d / "random.nii.gz").write_bytes(np.random.default_rng(1).bytes(4096))
    return d / "random.nii.gz"


@case("error", "NIfTI")
def gzip_of_random_bytes_nii_gz(d: Path) -> Path:
    (d / "gzrandom.nii.gz").write_bytes(gzip.compress(np.random.default_rng(2).bytes(4096)))
    return d / "gzrandom.nii.gz"


@case("error", "NIfTI")
def random_bytes_nii(d: Path) -> Path:
    (d / "random.nii").write_bytes(np.random.default_rng(3).bytes(4096))
    return d / "random.nii"


@case("error", "not a NIfTI")
def gzip_named_nii(d: Path) -> Path:
    blob = _nii(d / "x.nii.gz", _ct()).read_bytes()
    (d / "x.nii.gz").unlink()
    (d / "gz.nii").write_bytes(blob)
    return d / "gz.nii"


@case("error", "2-D")
def image_2d(d: Path) -> Path:
    return _nii(d / "slice.nii.gz", _ct((32, 32)))


@case("error", "4-D")
def volume_4d(d: Path) -> Path:
    return _nii(d / "v4d.nii.gz", _ct((16, 16, 12, 3)))


@case("error", "5-D")
def volume_5d(d: Path) -> Path:
    return _nii(d / "v5d.nii.gz", _ct((8, 8, 6, 2, 2)))


@case("accept", "(X, Y, Z, 1): the trailing singleton axis is dropped")
def volume_xyz1(d: Path) -> Path:
    return _nii(d / "xyz1.nii.gz", _ct((16, 16, 12, 1)))


@case("error", "single voxel")
def one_voxel(d: Path) -> Path:
    return _nii(d / "one.nii.gz", np.full((1, 1, 1), 40.0, np.float32))


@case("error", "2-D")
def one_slice_3d(d: Path) -> Path:
    return _nii(d / "oneslice.nii.gz", _ct((32, 32, 1)))


@case("error", "NaN")
def nan_voxels(d: Path) -> Path:
    v = _ct()
    v[8, 8, 6] = np.nan
    return _nii(d / "nan.nii.gz", v)


@case("error", "Inf")
def inf_voxels(d: Path) -> Path:
    v = _ct()
    v[2, 3, 4] = -np.inf
    return _nii(d / "inf.nii.gz", v)


@case("error", "RGB")
def rgb24_nifti(d: Path) -> Path:
    rgb = np.zeros((16, 16, 12), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    return _nii(d / "rgb.nii.gz", rgb)


@case("error", "complex")
def complex_nifti(d: Path) -> Path:
    return _nii(d / "complex.nii.gz", _ct().astype(np.complex64))


@case("error", "zero axis")
def zero_sform(d: Path) -> Path:
    return _nii_sform(d / "zero_sform.nii.gz", _ct(), np.zeros((4, 4)))


@case("error", "zero axis")
def zero_spacing_affine(d: Path) -> Path:
    return _nii_sform(d / "zero_spacing.nii.gz", _ct(), np.diag([1.0, 0.0, 2.0, 1.0]))


@case("error", "singular")
def parallel_axes_affine(d: Path) -> Path:
    aff = np.array([[1.0, 1.0, 0, 0], [0, 0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    return _nii_sform(d / "parallel.nii.gz", _ct(), aff)


@case("error", "finite")
def nan_affine(d: Path) -> Path:
    return _nii_sform(d / "nan_affine.nii.gz", _ct(), np.diag([np.nan, 1.0, 1.0, 1.0]))


@case("accept", "oblique affine: reoriented to the closest canonical axes")
def oblique_affine(d: Path) -> Path:
    c, s = np.cos(0.3), np.sin(0.3)
    aff = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    return _nii(d / "oblique.nii.gz", _ct(), aff)


@case("accept", "LPS orientation: reoriented to RAS")
def lps_orientation(d: Path) -> Path:
    return _nii(d / "lps.nii.gz", _ct(), np.diag([-1.0, -1.0, 2.0, 1.0]))


@case("accept", "a slab thinner than one output pixel: the resize keeps at least one pixel")
def thin_slab_300x2x20(d: Path) -> Path:
    v = np.full((300, 2, 20), 40.0, np.float32)
    v[:, :, :2] = -1000.0
    return _nii(d / "slab.nii.gz", v)


@case("accept", "air with one bright line: the foreground box is one voxel thick")
def air_with_one_line(d: Path) -> Path:
    v = np.full((64, 64, 32), -1000.0, np.float32)
    v[5:60, 30, 16] = 300.0
    return _nii(d / "line.nii.gz", v)


@case("accept", "big-endian float64 voxels: converted to float32")
def big_endian_float64(d: Path) -> Path:
    return _nii(d / "be.nii.gz", _ct().astype(">f8"))


@case("accept", "uint8 voxels: read, with a not-Hounsfield warning")
def uint8_voxels(d: Path) -> Path:
    return _nii(d / "u8.nii.gz", np.random.default_rng(4).integers(0, 255, (16, 16, 12), np.uint8))


@case("accept", "int16 with scl_slope/scl_inter: scaling applied once")
def scaled_int16(d: Path) -> Path:
    img = nib.Nifti1Image(np.round(_ct() + 1024).astype(np.int16), np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, str(d / "scaled.nii.gz"))
    return d / "scaled.nii.gz"


@case("accept", "NIfTI-2 header")
def nifti2(d: Path) -> Path:
    nib.save(nib.Nifti2Image(_ct(), np.eye(4)), str(d / "n2.nii.gz"))
    return d / "n2.nii.gz"


@case("accept", "a gzip stream with trailing junk after the data", upload=False)
def nii_gz_trailing_bytes(d: Path) -> Path:
    p = _nii(d / "trail.nii.gz", _ct())
    with p.open("ab") as fh:
        fh.write(b"\0" * 16)
    return p


# -- paths ---------------------------------------------------------------------------------
@case("error", "no such file", upload=False)
def nonexistent(d: Path) -> Path:
    return d / "missing.nii.gz"


@case("error", "link loop", upload=False)
def symlink_loop(d: Path) -> Path:
    os.symlink(d / "loop.nii.gz", d / "loop.nii.gz")
    return d / "loop.nii.gz"


@case("error", "symbolic link to a missing file", upload=False)
def dangling_symlink(d: Path) -> Path:
    os.symlink(d / "gone.nii.gz", d / "dangling.nii.gz")
    return d / "dangling.nii.gz"


@case("error", "unknown file type", upload=False)
def png_extension(d: Path) -> Path:
    (d / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    return d / "scan.png"


@case("error", "no DICOM images", upload=False)
def folder_named_nii_gz(d: Path) -> Path:
    (d / "dir.nii.gz").mkdir()
    return d / "dir.nii.gz"


@case("error", "no DICOM images")
def empty_folder(d: Path) -> Path:
    (d / "empty_dir").mkdir()
    return d / "empty_dir"


# -- NumPy ---------------------------------------------------------------------------------
@case("error", "pickle")
def npy_pickle(d: Path) -> Path:
    np.save(d / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return d / "obj.npy"


@case("error", "truncated")
def npy_truncated(d: Path) -> Path:
    np.save(d / "t.npy", _ct((32, 32, 24)))
    p = d / "t.npy"
    p.write_bytes(p.read_bytes()[:2000])
    return p


@case("error", "truncated")
def npy_header_512x512x1024_tiny_file(d: Path) -> Path:
    p = d / "liar.npy"
    with p.open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<i2", "fortran_order": False, "shape": (512, 512, 1024)}
        )
        fh.write(b"\0" * 1024)
    return p


@case("error", ".npy")
def npy_random_bytes(d: Path) -> Path:
    (d / "r.npy").write_bytes(np.random.default_rng(5).bytes(2048))
    return d / "r.npy"


@case("error", "2-D")
def npy_2d(d: Path) -> Path:
    np.save(d / "a2.npy", _ct((32, 32)))
    return d / "a2.npy"


@case("error", "4-D")
def npy_4d(d: Path) -> Path:
    np.save(d / "a4.npy", _ct((8, 8, 6, 3)))
    return d / "a4.npy"


@case("error", "complex")
def npy_complex(d: Path) -> Path:
    np.save(d / "c.npy", _ct().astype(np.complex128))
    return d / "c.npy"


@case("error", "not numbers")
def npy_strings(d: Path) -> Path:
    np.save(d / "s.npy", np.full((4, 4, 4), "x"))
    return d / "s.npy"


@case("error", "RGB")
def npy_structured_rgb(d: Path) -> Path:
    np.save(d / "rgb.npy", np.zeros((8, 8, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]))
    return d / "rgb.npy"


@case("error", "NaN")
def npy_nan(d: Path) -> Path:
    v = _ct()
    v[0, 0, 0] = np.nan
    np.save(d / "nan.npy", v)
    return d / "nan.npy"


@case("accept", "float16 array: converted to float32")
def npy_float16(d: Path) -> Path:
    np.save(d / "h.npy", _ct().astype(np.float16))
    return d / "h.npy"


@case("accept", "Fortran-ordered array")
def npy_fortran_order(d: Path) -> Path:
    np.save(d / "f.npy", np.asfortranarray(_ct()))
    return d / "f.npy"


@case("error", "cannot tell which", upload=False)
def npz_two_arrays(d: Path) -> Path:
    np.savez(d / "two.npz", a=_ct(), b=_ct())
    return d / "two.npz"


@case("error", "spacing", upload=False)
def npz_zero_spacing(d: Path) -> Path:
    np.savez(d / "zs.npz", array=_ct(), spacing=np.array([1.0, 0.0, 1.0]))
    return d / "zs.npz"


@case("error", "spacing", upload=False)
def npz_two_spacings(d: Path) -> Path:
    np.savez(d / "s2.npz", array=_ct(), spacing=np.array([1.0, 1.0]))
    return d / "s2.npz"


@case("error", "not a readable .npz", upload=False)
def npz_not_zip(d: Path) -> Path:
    (d / "nz.npz").write_bytes(b"hello, not a zip\n" * 20)
    return d / "nz.npz"


@case("error", "pickle", upload=False)
def npz_pickle_entry(d: Path) -> Path:
    np.savez(d / "p.npz", array=np.array([object()], dtype=object))
    return d / "p.npz"


@case("error", "compression bomb", upload=False)
def npz_bomb(d: Path) -> Path:
    p = d / "bomb.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("array.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<i2", "fortran_order": False, "shape": (512, 512, 1024)}
        )
        fh.write(b"\0" * (1 << 24))  # 16 MiB of the 512 MiB the header claims
    return p


@case("accept", "an .npz with array and spacing", upload=False)
def npz_good(d: Path) -> Path:
    np.savez_compressed(d / "good.npz", array=_ct(), spacing=np.array([1.0, 1.0, 2.5]))
    return d / "good.npz"


# -- DICOM ---------------------------------------------------------------------------------
@case("error", "Modality")
def dicom_mr(d: Path) -> Path:
    return _series(d / "mr", modality="MR")


@case("error", "ImageOrientationPatient")
def dicom_no_orientation(d: Path) -> Path:
    return _edit_slices(_series(d / "no_iop"), lambda i, ds: delattr(ds, "ImageOrientationPatient"))


@case("error", "ImagePositionPatient")
def dicom_no_position(d: Path) -> Path:
    return _edit_slices(_series(d / "no_ipp"), lambda i, ds: delattr(ds, "ImagePositionPatient"))


@case("error", "PixelSpacing")
def dicom_zero_pixel_spacing(d: Path) -> Path:
    return _edit_slices(_series(d / "ps0"), lambda i, ds: setattr(ds, "PixelSpacing", [0, 0]))


@case("error", "PixelSpacing")
def dicom_no_pixel_spacing(d: Path) -> Path:
    return _edit_slices(_series(d / "no_ps"), lambda i, ds: delattr(ds, "PixelSpacing"))


@case("error", "share one position")
def dicom_all_slices_one_position(d: Path) -> Path:
    return _edit_slices(
        _series(d / "samepos"), lambda i, ds: setattr(ds, "ImagePositionPatient", [0, 0, 0])
    )


@case("error", "one slice")
def dicom_single_slice(d: Path) -> Path:
    return _series(d / "single", n=1)


@case("error", "independent directions")
def dicom_parallel_orientation(d: Path) -> Path:
    return _edit_slices(
        _series(d / "iop_par"), lambda i, ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0] * 2)
    )


@case("error", "colour")
def dicom_rgb(d: Path) -> Path:
    def rgb(_: int, ds: pydicom.Dataset) -> None:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = b"\0" * (int(ds.Rows) * int(ds.Columns) * 3)

    return _edit_slices(_series(d / "rgb"), rgb)


@case("error", "truncated")
def dicom_truncated_pixels(d: Path) -> Path:
    def cut(i: int, ds: pydicom.Dataset) -> None:
        if i == 2:
            ds.PixelData = ds.PixelData[:100]

    return _edit_slices(_series(d / "cut"), cut)


@case("error", "could not decode DICOM pixel data (")
def dicom_corrupt_jpeg(d: Path) -> Path:
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    def jpeg(i: int, ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0" + np.random.default_rng(i).bytes(200)])
        ds["PixelData"].VR = "OB"

    return _edit_slices(_series(d / "jpeg"), jpeg)


@case("error", "not a DICOM image", upload=False)
def dicom_random_file(d: Path) -> Path:
    (d / "x.dcm").write_bytes(np.random.default_rng(6).bytes(1024))
    return d / "x.dcm"


@case("error", "no DICOM images")
def dicom_folder_of_text(d: Path) -> Path:
    (d / "txt").mkdir()
    (d / "txt" / "README.txt").write_text("the export failed\n")
    return d / "txt"


@case("error", "memory cap")
def dicom_huge_rows(d: Path) -> Path:
    def huge(_: int, ds: pydicom.Dataset) -> None:
        ds.Rows = ds.Columns = 65535

    return _edit_slices(_series(d / "huge", n=40), huge)


@case("accept", "two of eight slices repeat a position: kept once, one warning")
def dicom_some_duplicate_positions(d: Path) -> Path:
    def dup(i: int, ds: pydicom.Dataset) -> None:
        if i in (3, 5):
            ds.ImagePositionPatient = [0.0, 0.0, (i - 1) * 2.0]

    return _edit_slices(_series(d / "dup", n=8), dup)


@case("accept", "a missing slice: uneven gaps, spacing taken as the mean, one warning")
def dicom_missing_slice(d: Path) -> Path:
    folder = _series(d / "gap", n=8)
    sorted(folder.glob("*.dcm"))[4].unlink()
    return folder


@case("accept", "two series in one folder: the largest is read")
def dicom_two_series(d: Path) -> Path:
    _series(d / "two" / "a", n=6)
    _series(d / "two" / "b", n=3)
    return d / "two"


@case("accept", "a folder with stray non-DICOM files besides the slices")
def dicom_with_junk_files(d: Path) -> Path:
    folder = _series(d / "junk", n=6)
    (folder / "notes.txt").write_text("hello\n")
    (folder / "thumbs.db").write_bytes(b"\0" * 100)
    return folder


@case("accept", "file names in reverse order: slices sorted by position")
def dicom_shuffled_names(d: Path) -> Path:
    return _series(d / "shuf", names=[f"z{9 - i}.dcm" for i in range(6)])


@case("accept", "one slice file of a series: its series is read", upload=False)
def dicom_one_file_of_series(d: Path) -> Path:
    return sorted(_series(d / "one_of").glob("*.dcm"))[0]


def build_case(name: str, root: Path) -> Path:
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return CASES[name].build(folder)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case built once: name -> path."""
    root = tmp_path_factory.mktemp("corpus")
    return {name: build_case(name, root) for name in CASES}


@pytest.fixture(scope="session")
def corpus_cases() -> dict[str, Case]:
    return CASES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``case_name`` parametrizes over every case; ``error_case`` / ``accept_case`` over one
    kind; ``upload_case`` over the ones the web service takes."""
    pick = {
        "case_name": lambda c: True,
        "error_case": lambda c: c.expect == "error",
        "accept_case": lambda c: c.expect == "accept",
        "upload_case": lambda c: c.upload,
    }
    for arg, keep in pick.items():
        if arg in metafunc.fixturenames:
            metafunc.parametrize(arg, [n for n, c in CASES.items() if keep(c)])
