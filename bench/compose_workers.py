"""Workers x threads in the compose deployment, side by side on one corpus, in one run (issue 10).

Each layout gets a fresh destination and a fresh deployment of the same images (built once, cached),
with the defaults users run (base model, language detected, word timings on). Wall time runs from
the director's plan to the last commit record; each worker loads its model inside that time, as it
does for a user. Needs a Docker engine (tests/compose/engine.sh start).

    .venv/bin/python bench/compose_workers.py [--layouts 1x2,2x1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from fleet.media.output_names import stem_base
from tests.support.compose import (
    PGID,
    PROJECT,
    PUID,
    REAL_SPEECH,
    Deployment,
    base_images,
    fill_source,
    shared_folder,
    wait_for,  # fmt: skip
    write_env_file,
)

MEDIA = (".flac", ".mp3", ".wav", ".mkv")


def run_layout(workers: int, threads: int, source: Path, images: dict[str, str]) -> dict[str, float]:
    """Deploy with this layout on a fresh destination; seconds from plan to last transcript, audio seconds."""
    dest, state = shared_folder("wf-bench-dest-"), shared_folder("wf-bench-env-")
    os.chown(dest, PUID, PGID)
    settings = {**images, "COMPOSE_PROJECT_NAME": f"{PROJECT}-bench", "SOURCE_DIR": str(source), "DEST_DIR": str(dest),
                "PUID": str(PUID), "PGID": str(PGID), "FLEET_WORKERS": str(workers), "FLEET_THREADS": str(threads),
                "FLEET_LOG_FORMAT": "json", "FLEET_MIN_AGE_S": "0"}  # fmt: skip
    write_env_file(state / "compose.env", settings)
    deployment = Deployment(source=source, dest=dest, env_file=state / "compose.env", settings=settings)
    deployment.compose_run("down", "-v")
    try:
        result = deployment.build_sh("deploy")
        assert result.returncode == 0, result.stderr[-2000:]
        bases = [stem_base(str(p.relative_to(source))) for p in source.rglob("*") if p.suffix in MEDIA and "bad" not in p.parts]
        wait_for(lambda: all(deployment.commit_record(b) for b in bases), 1800, "every transcript")
        records = [deployment.commit_record(b) for b in bases]
        plan_at = json.loads((dest / ".fleet" / "director" / "last-plan.json").read_text())["at"]
        return {
            "wall_s": max(r["finished_at"] for r in records) - plan_at,
            "audio_s": sum(r["audio_duration_s"] for r in records),
        }
    finally:
        deployment.compose_run("down", "-v")
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default="1x2,2x1", help="WORKERSxTHREADS, comma separated")
    args = parser.parse_args()
    images = base_images()
    source = shared_folder("wf-bench-source-")
    try:
        fill_source(source)
        # Two minutes of real speech more, so both workers stay busy beyond the short clips.
        (source / "long").mkdir(mode=0o755)
        for copy in (1, 2):
            shutil.copy(REAL_SPEECH / "multilingual.mp3", source / "long" / f"licence-{copy}.mp3")
            (source / "long" / f"licence-{copy}.mp3").chmod(0o644)
        rows = []
        for layout in args.layouts.split(","):
            workers, threads = (int(n) for n in layout.split("x"))
            print(f"running {workers} worker(s) x {threads} thread(s) ...", flush=True)
            rows.append((workers, threads, run_layout(workers, threads, source, images)))
    finally:
        shutil.rmtree(source, ignore_errors=True)
    fastest = min(r["wall_s"] for _, _, r in rows)
    print("\n| workers x threads | plan to last transcript | audio / wall | vs fastest |\n|---|---|---|---|")
    for workers, threads, r in rows:
        speed = r["audio_s"] / r["wall_s"]
        print(f"| {workers} x {threads} | {r['wall_s']:.1f} s | {speed:.1f}x | {r['wall_s'] / fastest:.2f} |")


if __name__ == "__main__":
    main()
