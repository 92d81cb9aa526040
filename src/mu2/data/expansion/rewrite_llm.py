"""The LLM augmentation backend: rewrites and QA pairs from an OpenAI-compatible endpoint.

What the paper did with GPT-4o mini (and the reference code with a local vLLM server):
one prompt per report for N paraphrases, one for N question-answer pairs, each answer in
a strict JSON format so it can be checked. Requests run in a bounded thread pool; a
request that still fails after its retries costs that report its augmentations only
(the original row is always kept), and the guard rails in ``mu2.data.expansion.augment`` check
every text that comes back.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from tqdm import tqdm

from mu2.data.expansion.augment import AugmentJob, JobOutput
from mu2.data.expansion.llm_client import ChatClient, ChatError, MalformedAnswer
from mu2.errors import Mu2Error

REWRITE_SYSTEM = (
    "You rewrite the findings section of CT radiology reports to enlarge a training set. "
    "Every rewrite must state exactly the same findings as the original: the same organs, "
    "sides, lobes, sizes, counts and severities. Add nothing, leave nothing out; change "
    "only wording and sentence order. Write in English only. Reply with JSON only, no "
    'other text, in this format: {"rewrites": ["first rewrite", "second rewrite"]}'
)
REWRITE_USER = "Write {n} different rewrites of this {region}CT findings report.\n\nReport:\n{text}"
QA_SYSTEM = (
    "You write clinically relevant question-answer pairs about a CT radiology report, to "
    "train a model that reads CT scans. Ask whether a finding is present (yes/no), where "
    "it is (organ, side), how large it is, how severe it is, and what the findings in the "
    "region are. Every answer must follow from the report alone. Write in English only. "
    "Reply with JSON only, no other text, in this format: "
    '{"qa": [{"question": "...", "answer": "..."}]}'
)
QA_USER = (
    "Write {n} question-answer pairs about this {region}CT findings report.\n\nReport:\n{text}"
)

_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


def _json_object(content: str, key: str) -> list:
    """The list under ``key`` of the JSON object in ``content`` (code fences allowed)."""
    text = _FENCE.sub("", content.strip())
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MalformedAnswer(f"not JSON ({err.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise MalformedAnswer(f'expected an object with a "{key}" list')
    return data[key]


def parse_rewrites(content: str) -> list[str]:
    """``{"rewrites": [str, ...]}`` -> the strings; anything else is MalformedAnswer."""
    items = _json_object(content, "rewrites")
    if not items or not all(isinstance(x, str) for x in items):
        raise MalformedAnswer('"rewrites" must be a non-empty list of strings')
    return items


def parse_qa(content: str) -> list[tuple[str, str]]:
    """``{"qa": [{"question", "answer"}, ...]}`` -> pairs; anything else is MalformedAnswer."""
    items = _json_object(content, "qa")
    pairs = []
    for x in items:
        if not (
            isinstance(x, dict)
            and isinstance(x.get("question"), str)
            and isinstance(x.get("answer"), str)
        ):
            raise MalformedAnswer('every "qa" item needs a "question" and an "answer" string')
        pairs.append((x["question"], x["answer"]))
    if not pairs:
        raise MalformedAnswer('"qa" is empty')
    return pairs


def rewrite_messages(job: AugmentJob) -> list[dict[str, str]]:
    region = f"{job.region} " if job.region else ""
    user = REWRITE_USER.format(n=job.rewrites, region=region, text=job.text)
    return [{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": user}]


def qa_messages(job: AugmentJob) -> list[dict[str, str]]:
    region = f"{job.region} " if job.region else ""
    user = QA_USER.format(n=job.qa, region=region, text=job.text)
    return [{"role": "system", "content": QA_SYSTEM}, {"role": "user", "content": user}]


class LLMBackend:
    """Sends each job's prompts to a chat endpoint, ``concurrency`` requests at a time."""

    name = "openai"

    def __init__(self, client: ChatClient, concurrency: int = 4):
        if concurrency < 1:
            raise Mu2Error(f"--concurrency must be >= 1, got {concurrency}")
        self.client = client
        self.concurrency = concurrency

    def run(self, jobs: list[AugmentJob], progress: bool = False) -> list[JobOutput]:
        outputs = [JobOutput() for _ in jobs]
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        futures: dict[Future, tuple[int, str]] = {}
        for i, job in enumerate(jobs):
            if job.rewrites:
                fut = pool.submit(self.client.complete, rewrite_messages(job), parse_rewrites)
                futures[fut] = (i, "rewrite")
            if job.qa:
                futures[pool.submit(self.client.complete, qa_messages(job), parse_qa)] = (i, "qa")
        bar = tqdm(total=len(futures), desc="augment (llm)", unit="request", disable=not progress)
        try:
            for fut in as_completed(futures):
                i, what = futures[fut]
                bar.update(1)
                try:
                    result = fut.result()
                except ChatError as err:
                    outputs[i].failures.append(f"{what} request failed: {err}")
                    continue
                if what == "rewrite":
                    outputs[i].rewrites = result
                else:
                    outputs[i].qa = result
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # a fatal answer: stop sending
            raise
        finally:
            bar.close()
        pool.shutdown()
        return outputs
