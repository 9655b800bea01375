"""The director's side of "skip what is subtitled": sidecars from the folder listing, embedded streams from a cache.

Probing a video's streams starts ffprobe (~50 ms, more on a NAS); a watch round over a library of 10,000
subtitled films must not do it 10,000 times. Each video's subtitle languages are kept by fingerprint in
`.fleet/director/embedded-subtitles.json`: a round probes only new or changed files.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from director.scan import SourceFile
from fleet.job.messages import SourceFingerprint
from fleet.media.subtitles import FolderSidecars, find_subtitle, probe_embedded_languages
from fleet.state.atomic import write_atomic
from fleet.state.paths import embedded_subtitles_cache_path
from fleet.state.records import SubtitledRecord

log = structlog.get_logger()
# A video that did not answer the probe in time is not probed again for this long (not every round, holding it up).
PROBE_RETRY_S = 3600


class SubtitleCheck:
    """Callable per source and language: why the video counts as subtitled, or None. `save()` keeps the cache."""

    def __init__(self, source_root: Path, dest: Path, timeout_s: float, now: float | None = None) -> None:
        self.source_root = source_root
        self.cache_path = embedded_subtitles_cache_path(dest)
        self.timeout_s = timeout_s
        self.now = time.time() if now is None else now
        self.cache = _load(self.cache_path)
        self.used: dict[str, list[object]] = {}  # entries for files seen this round: the cache keeps only these
        self.folders: dict[str, FolderSidecars] = {}
        self.probed = 0

    def __call__(self, source: SourceFile, language: str, probe: bool = True) -> str | None:
        folder, _, name = source.rel.rpartition("/")
        embedded = (lambda: self._embedded(source)) if probe else tuple
        found = find_subtitle(name, self._sidecars(folder), language, embedded)
        return found.reason() if found else None

    def sidecar_holds(self, source: SourceFile, record: SubtitledRecord) -> bool:
        """Whether the sidecar a worker's record relied on is still the video's own, as it was then."""
        folder, _, name = source.rel.rpartition("/")
        if record.sidecar is None or record.sidecar not in {own for own, _ in self._sidecars(folder).own(name)}:
            return False
        try:
            stat = (self.source_root / folder / record.sidecar).stat()
        except OSError:
            return False
        return record.sidecar_fingerprint == SourceFingerprint(size=stat.st_size, mtime_ns=stat.st_mtime_ns)

    def prefetch(self, sources: list[SourceFile], language: str, threads: int = 8) -> None:
        """Probe, side by side, the videos not cached that have no sidecar in `language`: a first round over a
        large library waits for ffprobe once per file, but not one file after the other."""
        wanted = [s for s in sources if self._cached(s) is None and not self(s, language, probe=False)]
        if wanted:
            with ThreadPoolExecutor(threads) as pool:
                for source, languages in zip(wanted, pool.map(self._probe, wanted), strict=True):
                    self._remember(source, languages)

    def save(self) -> None:
        """Write the cache back with this round's entries (a deleted file's entry goes with it)."""
        if self.probed or self.used.keys() != self.cache.keys():
            write_atomic(self.cache_path, json.dumps(self.used, separators=(",", ":")))

    def _sidecars(self, folder: str) -> FolderSidecars:
        """The folder's subtitles by the video they belong to: listed and indexed once per round."""
        if folder not in self.folders:
            try:
                names = os.listdir(self.source_root / folder)
            except OSError:
                names = []
            self.folders[folder] = FolderSidecars.of(names)
        return self.folders[folder]

    def _embedded(self, source: SourceFile) -> tuple[str, ...]:
        cached = self._cached(source)
        if cached is not None:
            return cached
        return self._remember(source, self._probe(source))

    def _cached(self, source: SourceFile) -> tuple[str, ...] | None:
        entry = self.used.get(source.rel) or self.cache.get(source.rel)
        if entry is None or entry[:2] != [source.size, source.mtime_ns]:
            return None
        if entry[2] is None:  # the probe timed out: no streams known, and not asked again until the entry's time
            if len(entry) < 4 or not isinstance(entry[3], int | float) or self.now >= entry[3]:
                return None
            self.used[source.rel] = entry
            return ()
        self.used[source.rel] = entry
        return tuple(entry[2])

    def _probe(self, source: SourceFile) -> tuple[str, ...] | None:
        return probe_embedded_languages(self.source_root / source.rel, self.timeout_s)

    def _remember(self, source: SourceFile, languages: tuple[str, ...] | None) -> tuple[str, ...]:
        if languages is None:  # no answer in time (a stalled share): planned as unsubtitled, asked again in an hour
            log.warning("no answer from a video within the probe timeout: planned as having no subtitle stream",
                        file=source.rel, timeout_s=self.timeout_s, next_try_in_s=PROBE_RETRY_S)  # fmt: skip
            self.probed += 1
            self.used[source.rel] = [source.size, source.mtime_ns, None, self.now + PROBE_RETRY_S]
            return ()
        self.probed += 1
        self.used[source.rel] = [source.size, source.mtime_ns, list(languages)]
        return languages


def _load(path: Path) -> dict[str, list[object]]:
    try:
        loaded = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
