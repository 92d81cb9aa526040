"""METEOR 1.5 through the jar that pycocoevalcap ships, in one JVM for a whole evaluation.

pycocoevalcap's ``Meteor`` wrapper scores one corpus per call and hides the per-case
sufficient statistics; we need them to score groups and bootstrap resamples without a new
JVM (about 11 s to start). METEOR's corpus score is the score of the element-wise sum of
the per-case statistics (the jar's EVAL adds them), so a subset's score is one EVAL line.
The command line is the wrapper's own.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mu2.errors import Mu2Error

log = logging.getLogger(__name__)

# pycocoevalcap's command: 2 GB heap, stdin/stdout mode, English, normalization on.
METEOR_ARGS = ("-Xmx2G", "-jar", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm")


def meteor_jar_dir() -> Path:
    """The folder of pycocoevalcap's METEOR wrapper, which holds the jar and its data."""
    import pycocoevalcap.meteor.meteor as wrapper

    return Path(wrapper.__file__).resolve().parent


class MeteorScorer:
    """A running METEOR 1.5 process; use as a context manager."""

    def __init__(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise Mu2Error(
                "METEOR needs Java: pycocoevalcap runs meteor-1.5.jar and no 'java' is on PATH",
                fix="install a Java runtime (e.g. apt-get install default-jre-headless) "
                "or leave METEOR out: --metrics bleu,rouge,bertscore,green",
            )
        self._proc = subprocess.Popen(
            [java, *METEOR_ARGS],
            cwd=meteor_jar_dir(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.kill()
        self._proc.wait()

    def _ask(self, line: str, n_answers: int) -> list[str]:
        try:
            self._proc.stdin.write((line + "\n").encode())
            self._proc.stdin.flush()
            answers = [self._proc.stdout.readline().decode().strip() for _ in range(n_answers)]
        except BrokenPipeError:
            answers = [""]
        if any(a == "" for a in answers):
            self._proc.kill()
            err = self._proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise Mu2Error(
                "METEOR (java -jar meteor-1.5.jar) stopped: " + (err[-1] if err else "no output"),
                fix="check that Java 8+ runs and has 2 GB of heap, or leave METEOR out",
            )
        return answers

    def statistics(
        self, references: Sequence[str], predictions: Sequence[str], progress: bool = False
    ) -> np.ndarray:
        """Per-case sufficient statistics, (n, S); texts should already be normalized."""
        from tqdm.auto import tqdm

        rows = []
        pairs = zip(references, predictions, strict=True)
        for ref, hyp in tqdm(pairs, total=len(references), desc="METEOR", disable=not progress):
            # The wrapper's clean-up: '|||' separates fields, newlines end a request.
            hyp = " ".join(hyp.replace("|||", "").split())
            ref = " ".join(ref.replace("|||", "").split())
            (stats,) = self._ask(f"SCORE ||| {ref} ||| {hyp}", 1)
            rows.append([float(x) for x in stats.split()])
        return np.asarray(rows, dtype=float)

    def score_statistics(self, stats: np.ndarray) -> np.ndarray:
        """METEOR of each row of statistics, (M, S) -> (M,), in one EVAL request."""
        fields = [" ".join(repr(float(x)) for x in row) for row in stats]
        answers = self._ask("EVAL ||| " + " ||| ".join(fields), len(fields) + 1)
        return np.asarray([float(a) for a in answers[:-1]])


class MeteorScores:
    """Per-case METEOR and the corpus aggregate of any subset, from one set of statistics."""

    def __init__(self, scorer: MeteorScorer, stats: np.ndarray) -> None:
        self._scorer = scorer
        self._stats = stats  # (n, S)
        self.per_case = scorer.score_statistics(stats)  # (n,)

    def aggregate(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        """Corpus METEOR of each subset: the score of its summed statistics."""
        sums = np.stack([self._stats[idx].sum(axis=0) for idx in index_sets])  # (M, S)
        return self._scorer.score_statistics(sums)


def meteor(
    scorer: MeteorScorer,
    references: Sequence[str],
    predictions: Sequence[str],
    progress: bool = False,
) -> MeteorScores:
    """METEOR statistics for a corpus on a running scorer (texts already normalized)."""
    log.info("METEOR: scoring %d cases", len(references))
    return MeteorScores(scorer, scorer.statistics(references, predictions, progress))
