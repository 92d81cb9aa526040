"""The one device resolver: auto, cpu, cuda[:N]; one clear error otherwise."""

from __future__ import annotations

import pytest
import torch

from mu2.device import resolve_device
from mu2.errors import Mu2Error


def test_auto_and_none_pick_the_gpu_only_when_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_word_is_one_clear_error():
    with pytest.raises(Mu2Error, match="unknown device 'gpu0'.*use auto, cpu or cuda"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(Mu2Error, match="no CUDA GPU is available"):
        resolve_device("cuda:0")
