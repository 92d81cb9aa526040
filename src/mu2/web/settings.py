"""``ServeSettings``: limits and generation settings of the web service (`mu2 serve`).

Every limit is named here with its default, so the CLI, the tests and a YAML file
(``mu2.config.load_config(ServeSettings, path)``) all set the same fields.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mu2.errors import Mu2Error
from mu2.generate.settings import GenerationSettings

MIB = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 1024 * MIB  # 1 GB: a large thin-slice CT series, zipped
# Zip-bomb guard: a zipped DICOM series unpacks to at most this much (DICOM compresses
# about 2-4x; 4 GB leaves room for a 1 GB upload and refuses bombs).
DEFAULT_MAX_UNZIPPED_BYTES = 4096 * MIB
DEFAULT_MAX_ZIP_ENTRIES = 20_000  # thin-slice series have a few thousand files
DEFAULT_MAX_QUEUE = 64  # requests waiting for the model; more are answered 503
DEFAULT_CACHE_SIZE = 16  # finished results kept for downloads (least recently used go)
DEFAULT_CACHE_BYTES = 1024 * MIB  # and at most this much memory for them
DEFAULT_PREVIEW_MAX_DIM = 256  # voxels per axis of the volume the page draws
# A zipped series may unpack to at most this many times the upload's size (DICOM deflates
# 2-5x), and to at most max_unzipped_bytes summed over all requests unpacking at once.
DEFAULT_MAX_UNZIP_RATIO = 8.0
# The model's work per request may use this share of the machine's memory by default.
DEFAULT_MEMORY_FRACTION = 0.5
DEFAULT_MIN_FREE_DISK_BYTES = 512 * MIB  # uploads are refused (507) below this free space
DEFAULT_HEADER_TIMEOUT_S = 10.0  # a connection must send its request head within this
DEFAULT_MAX_HEADERS = 64
DEFAULT_MAX_HEADER_BYTES = 16 * 1024  # request line plus headers
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]


def default_max_memory_gb() -> float:
    """DEFAULT_MEMORY_FRACTION of the machine's RAM (8 GiB when it cannot be read)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 8.0
    return round(ram * DEFAULT_MEMORY_FRACTION / 2**30, 1)


@dataclass
class ServeSettings:
    """What `mu2 serve` accepts and how it writes reports."""

    device: str = "cpu"
    """Device of the model (cpu, cuda, cuda:N)."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    """Largest request body accepted; larger ones get 413."""
    max_unzipped_bytes: int = DEFAULT_MAX_UNZIPPED_BYTES
    """Largest total size a zipped DICOM series may unpack to (zip-bomb guard)."""
    max_zip_entries: int = DEFAULT_MAX_ZIP_ENTRIES
    """Most files a zipped series may hold."""
    max_queue: int = DEFAULT_MAX_QUEUE
    """Most requests waiting for (or using) the model at once; more get 503."""
    cache_size: int = DEFAULT_CACHE_SIZE
    """Finished results kept in memory for the downloads and the viewer."""
    cache_bytes: int = DEFAULT_CACHE_BYTES
    """Memory cap of the kept results (heat-map NIfTI and the viewer's volumes)."""
    preview_max_dim: int = DEFAULT_PREVIEW_MAX_DIM
    """The page draws the CT subsampled to at most this many voxels per axis."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """How answers are decoded, as `mu2 report` does (``generation.max_new_tokens=64``,
    ``generation.do_sample=true``); with sampling every request uses ``generation.seed``, so
    one scan always gets one report."""
    heatmap: bool = True
    """Compute the question-to-CT heat map (the overlay and the NIfTI download)."""
    max_memory_gb: float = field(default_factory=default_max_memory_gb)
    """Memory budget of one report: a scan whose header asks for more (estimated from its
    size, see mu2.io.checks.PEAK_BYTES_PER_VOXEL) is refused before it is read (422)."""
    max_unzip_ratio: float = DEFAULT_MAX_UNZIP_RATIO
    """A zip may unpack to at most this many times its own size (zip-bomb guard)."""
    min_free_disk_bytes: int = DEFAULT_MIN_FREE_DISK_BYTES
    """Uploads are refused (507) when the temp folder has less free space than this plus
    what the upload needs."""
    allowed_hosts: list[str] = field(default_factory=lambda: list(LOOPBACK_HOSTS))
    """Host header values served (DNS-rebinding guard); '*' allows any."""
    allowed_origins: list[str] = field(default_factory=list)
    """Origins besides the page itself that may POST (e.g. http://my-viewer:3000)."""
    token: str | None = None
    """API token every POST must send in X-Mu2-Token; None = a new random one per start."""
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    """A connection that has not sent its request head within this is closed."""
    max_headers: int = DEFAULT_MAX_HEADERS
    """Most request headers accepted (431 beyond)."""
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    """Largest request head (request line plus headers) accepted."""

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "max_upload_bytes",
            "max_unzipped_bytes",
            "max_zip_entries",
            "max_queue",
            "cache_size",
            "cache_bytes",
            "preview_max_dim",
            "max_headers",
            "max_header_bytes",
        ):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_memory_gb", "max_unzip_ratio", "header_timeout_s"):
            if float(getattr(self, name)) <= 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if self.token is not None and len(self.token) < 8:
            problems.append("token must be at least 8 characters (or null for a random one)")
        if problems:
            raise Mu2Error("invalid serve settings: " + "; ".join(problems))
