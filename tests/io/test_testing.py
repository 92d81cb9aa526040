"""mu2.io.testing.make_bad_inputs: every case is refused with a Mu2Error naming the file."""

from __future__ import annotations

import pytest

from mu2.errors import Mu2Error
from mu2.io import load_ct
from mu2.io.testing import make_bad_inputs

EXPECTED = {
    "truncated_nii_gz": "truncated",
    "zero_byte": "empty",
    "text_as_nii_gz": "not a NIfTI",
    "image_2d": "2-D",
    "volume_4d": "4-D",
    "nan_voxels": "NaN",
    "inf_voxels": "Inf",
    "dicom_no_images": "no DICOM images",
    "over_memory_cap": "memory cap",
    "nonexistent": "no such file",
    "unknown_extension": "unknown file type",
    "non_ct_dicom": "not CT",
}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    return make_bad_inputs(tmp_path_factory.mktemp("bad"))


def test_every_case_is_listed(bad_inputs):
    assert set(bad_inputs) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_raises_one_clear_line(bad_inputs, name):
    path = bad_inputs[name]
    with pytest.raises(Mu2Error) as info:
        load_ct(path)
    message = str(info.value)
    assert EXPECTED[name] in message
    assert str(path) in message and "fix:" in message
    assert "\n" not in message
