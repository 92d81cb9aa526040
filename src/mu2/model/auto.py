"""mu2 in the Hugging Face ecosystem: Auto classes, ``auto_map``, generation config, Hub ids.

After ``import mu2`` (any mu2 module), ``AutoConfig``, ``AutoModel``,
``AutoModelForImageTextToText`` and ``AutoProcessor`` resolve a mu2 folder to mu2's own
classes. A saved folder also carries ``auto_map`` and a two-line ``mu2_auto.py`` that
re-exports those classes, so ``trust_remote_code=True`` works without ``import mu2``
(mu2 must still be installed: the shim imports it rather than copying the package).

``resolve_pretrained`` turns a Hub repo id into a local snapshot folder through
``huggingface_hub.snapshot_download``, which honours ``HF_HUB_OFFLINE`` and the local cache.
"""

from __future__ import annotations

import re
from pathlib import Path

from transformers import GenerationConfig

from mu2.errors import Mu2Error

# Report length cap of the generation config a model gets when its folder has none.
DEFAULT_MAX_NEW_TOKENS = 256
SHIM_MODULE = "mu2_auto"
SHIM_SOURCE = '''"""Lets transformers' trust_remote_code find mu2's classes (needs `pip install mu2`)."""

from mu2.model import Mu2Config, Mu2ForConditionalGeneration, Mu2Processor  # noqa: F401
'''
AUTO_MAP = {
    "AutoConfig": f"{SHIM_MODULE}.Mu2Config",
    "AutoModel": f"{SHIM_MODULE}.Mu2ForConditionalGeneration",
    "AutoModelForImageTextToText": f"{SHIM_MODULE}.Mu2ForConditionalGeneration",
    "AutoProcessor": f"{SHIM_MODULE}.Mu2Processor",
}
# owner/name as the Hub spells repository ids (a local path that exists wins over this).
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def register_auto_classes(config_cls: type, model_cls: type, processor_cls: type) -> None:
    """Register mu2's config, model and processor with the transformers Auto classes
    (the package passes its classes: this module sits below the model it registers)."""
    from transformers import AutoModel, AutoModelForImageTextToText, AutoProcessor

    AutoModel.register(config_cls, model_cls, exist_ok=True)
    AutoModelForImageTextToText.register(config_cls, model_cls, exist_ok=True)
    AutoProcessor.register(config_cls, processor_cls, exist_ok=True)


def default_generation_config(config) -> GenerationConfig:
    """Greedy decoding up to 256 new tokens, with the LLM's bos/eos/pad ids.

    For models saved before generation_config.json existed, and for fresh builds."""
    gen = GenerationConfig.from_model_config(config)
    gen.max_new_tokens = DEFAULT_MAX_NEW_TOKENS
    gen.do_sample = False
    return gen


def write_remote_code_shim(folder: str | Path) -> None:
    """The ``mu2_auto.py`` that ``auto_map`` points at (see the module docstring)."""
    (Path(folder) / f"{SHIM_MODULE}.py").write_text(SHIM_SOURCE)


def is_repo_id(name: str | Path) -> bool:
    """True for ``owner/name`` that is not an existing local path."""
    text = str(name)
    return bool(_REPO_ID.match(text)) and not Path(text).expanduser().exists()


def resolve_pretrained(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local model folder for a folder path or a Hub repo id.

    Repo ids go through ``huggingface_hub.snapshot_download``: with ``HF_HUB_OFFLINE=1`` it
    returns the cached snapshot without network access, or fails when none is cached.
    """
    if not is_repo_id(name_or_path):
        return Path(name_or_path).expanduser()
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    repo_id = str(name_or_path)
    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except LocalEntryNotFoundError as err:
        raise Mu2Error(
            f"Hub model '{repo_id}' is not in the local Hugging Face cache and cannot be "
            "downloaded (offline, or no network)",
            fix="download it once with network access (huggingface-cli download "
            f"{repo_id}), or pass a local model folder",
        ) from err
    except (HFValidationError, OSError) as err:
        first = (str(err).splitlines() or [""])[0][:160]
        raise Mu2Error(
            f"cannot fetch Hub model '{repo_id}' ({type(err).__name__}: {first})",
            fix="check the repo id and your access, or pass a local model folder",
        ) from err
