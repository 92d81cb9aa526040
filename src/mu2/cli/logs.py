"""Logging set-up shared by the long-running commands (`mu2 demo`, `mu2 bench`)."""

from __future__ import annotations

import logging

NOISY_LOGGERS: tuple[str, ...] = ("accelerate", "httpx", "matplotlib", "PIL")


def configure_logging(info: bool) -> None:
    """Timestamped library logs at INFO (``info``) or WARNING; third-party chatter and
    transformers' own progress bars off, since the commands draw their own."""
    logging.basicConfig(
        level=logging.INFO if info else logging.WARNING,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
