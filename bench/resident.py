"""The hand-tuned limit: N resident processes, pinned threads, a shared in-memory work list, no queue.

`decoder="whisperx"` transcribes with whisperX's own batched pipeline (bare transcription);
`decoder="fleet"` with the worker's WindowDecoder (the same work the fleet does, loop fallback included).

Each process loads the model once, then takes files from a multiprocessing queue until it is
empty: decode, transcribe, write txt/srt/vtt/tsv/json. What the fleet does, minus SQS and state.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path


def work(files: mp.Queue, model_dir: str, threads: int, out_dir: str, align_model: str | None, batch_size: int = 8,
         compute_type: str = "int8", languages: dict[str, str] | None = None, decoder: str = "whisperx") -> None:  # fmt: skip
    from worker.threads import pin_native_threads, pin_torch_threads

    pin_native_threads(threads)  # the fleet's own pinning, so the limit is measured the same way
    import whisperx

    from fleet.job.identity import DecodingOptions, TranscriptionSettings
    from worker.audio.samples import decode_audio
    from worker.job.writers import render
    from worker.speech.window_decoder import WindowDecoder

    pin_torch_threads(threads)
    # Each file's language is given (English unless `languages` says otherwise): no detection in the limit.
    model = whisperx.load_model(model_dir, "cpu", compute_type=compute_type, threads=threads, local_files_only=True)
    aligner = whisperx.load_align_model("en", "cpu", model_name=align_model, model_cache_only=True) if align_model else None
    options = TranscriptionSettings().subtitle_options()
    windows = WindowDecoder(model)
    while (path := files.get()) is not None:
        audio = decode_audio(Path(path), 600)
        language = (languages or {}).get(path, "en")
        if decoder == "fleet":  # the worker's own decoding (loop fallback, no-speech rule), minus queue and state
            decoded = windows.decode(audio, language=language, task="transcribe", options=DecodingOptions(),
                                     batch_size=batch_size, want_word_timings=lambda _language: False)  # fmt: skip
            result = {"segments": decoded.segments, "language": decoded.language}
        else:
            result = model.transcribe(audio, batch_size=batch_size, language=language)
        if aligner:
            result = whisperx.align(result["segments"], aligner[0], aligner[1], audio, "cpu")
        base = Path(out_dir) / Path(path).stem
        for fmt in ("txt", "srt", "vtt", "tsv"):
            Path(f"{base}.{fmt}").write_text(render(result, fmt, options))
        Path(f"{base}.json").write_text(str(result))


def run_resident(paths: list[Path], model_dir: str, processes: int, threads: int, out_dir: Path,
                 align_model: str | None = None, batch_size: int = 8, compute_type: str = "int8",
                 languages: dict[str, str] | None = None, decoder: str = "whisperx") -> None:  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    context = mp.get_context("spawn")
    files: mp.Queue = context.Queue()
    for path in sorted(paths, key=lambda p: -p.stat().st_size):  # longest first: balanced ends
        files.put(str(path))
    for _ in range(processes):
        files.put(None)
    args = (files, model_dir, threads, str(out_dir), align_model, batch_size, compute_type, languages, decoder)
    workers = [context.Process(target=work, args=args) for _ in range(processes)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"resident process failed with {process.exitcode}")
