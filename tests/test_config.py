from dataclasses import dataclass, field

import pytest

from mu2.config import load_config
from mu2.errors import Mu2Error


@dataclass
class Inner:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Outer:
    name: str = "tiny"
    steps: int = 10
    flag: bool = False
    optim: Inner = field(default_factory=Inner)


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: paper\noptim:\n  lr: 0.5\n")
    cfg = load_config(Outer, p, ["steps=3", "optim.betas=[0.8,0.9]", "flag=true"])
    assert cfg.name == "paper" and cfg.steps == 3 and cfg.flag is True
    assert cfg.optim.lr == 0.5 and cfg.optim.betas == (0.8, 0.9)


def test_unknown_key_suggests_closest():
    with pytest.raises(Mu2Error, match="did you mean 'steps'"):
        load_config(Outer, None, ["stpes=3"])


def test_bad_type_is_clear():
    with pytest.raises(Mu2Error, match="steps"):
        load_config(Outer, None, ["steps=abc"])


def test_unreadable_yaml_value_names_the_override():
    # nested brackets unquoted: YAML cannot read it; one clear error, not a parser traceback
    with pytest.raises(Mu2Error, match=r"override optim.betas=\[0.8,\[0.9\]: not a readable"):
        load_config(Outer, None, ["optim.betas=[0.8,[0.9]"])
