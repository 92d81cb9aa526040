"""The chunked way back (frames -> input grid) equals one whole-volume trilinear resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mu2.io import CTVolume
from mu2.preprocess import prep_config, prepare
from mu2.preprocess.mapping import trilinear_z_chunks


@pytest.mark.parametrize(
    ("src", "dst", "chunk"),
    [((20, 17, 9), (50, 31, 40), 3), ((8, 8, 30), (5, 6, 7), 2), ((3, 4, 1), (6, 6, 5), 16)],
)
def test_chunks_equal_one_interpolate(src, dst, chunk):
    block = torch.rand(src, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(block[None, None], size=dst, mode="trilinear", align_corners=False)[0, 0]
    parts = list(trilinear_z_chunks(block, dst, chunk))
    assert [p[0].start for p in parts] == list(range(0, dst[2], chunk))
    torch.testing.assert_close(torch.cat([c for _, c in parts], dim=2), ref, rtol=0, atol=2e-6)


def test_to_input_chunk_size_does_not_change_the_map(real_ct_path):
    from mu2.io import load_ct

    vol: CTVolume = load_ct(real_ct_path)
    prepared = prepare(vol, prep_config("tiny"))
    heat = torch.rand(prepared.frames.shape, generator=torch.Generator().manual_seed(1))
    whole = prepared.mapping.to_input(heat, chunk_slices=10_000)
    for chunk in (1, 7):
        np.testing.assert_allclose(
            prepared.mapping.to_input(heat, chunk_slices=chunk), whole, rtol=0, atol=2e-6
        )
    assert whole.shape == vol.shape and whole.dtype == np.float32
