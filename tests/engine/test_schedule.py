import math

import pytest
import torch

from mu2.engine.schedule import warmup_cosine, warmup_steps
from mu2.errors import Mu2Error


def _lrs(total, warmup_ratio, min_lr_ratio=0.0, lr=1.0):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = warmup_cosine(opt, total, warmup_ratio, min_lr_ratio)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_to_floor():
    lrs = _lrs(total=20, warmup_ratio=0.1, min_lr_ratio=0.1)
    assert warmup_steps(20, 0.1) == 2
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(0.5)  # linear warm-up over 2 steps
    assert lrs[2] == pytest.approx(1.0)  # peak right after warm-up
    decay = lrs[2:]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))  # monotone decay
    # cosine at progress p: floor + (1 - floor) * (1 + cos(pi p)) / 2
    p = (19 - 2) / 18
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
    assert lrs[-1] < 0.2


def test_bad_ratio_is_a_user_error():
    with pytest.raises(Mu2Error, match="warmup_ratio"):
        warmup_steps(10, 1.5)
    with pytest.raises(Mu2Error, match="optimizer steps"):
        _lrs(total=0, warmup_ratio=0.1)
