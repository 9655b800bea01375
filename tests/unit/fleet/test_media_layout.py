"""The media layout's names, the subtitle files it finds, what it writes beside a video, and the round summary."""

from __future__ import annotations

import json
import os

import pytest

from director.plan import Action, PlanInputs, plan_sources
from director.round_report import follow_round, summary_message
from director.scan import SourceFile
from director.subtitle_check import SubtitleCheck
from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint
from fleet.language import written_language
from fleet.media.layout import MediaLayout, language_in_style
from fleet.media.subtitles import FolderSidecars, matching_sidecar, sidecar_language
from fleet.outputs.commit import BesideVideo
from fleet.settings import FleetSettings
from fleet.state.paths import round_path
from fleet.state.records import CommitRecord, SubtitledRecord
from tests.support.receiver import receiver
from worker.job.writers import write_outputs

RESULT = {"segments": [{"text": " Hello there.", "start": 0.5, "end": 1.75}], "language": "en"}
OPTIONS = {"max_line_width": None, "max_line_count": None, "highlight_words": False}
MEDIA = TranscriptionSettings(media=MediaLayout())


@pytest.mark.parametrize(("codes", "tag", "language", "expected"), [
    ("639-1", None, "en", "Films/Film (2001).en.srt"),
    ("639-1", "whisper", "de", "Films/Film (2001).whisper.de.srt"),  # the tag before the language: all four read it
    ("639-2b", None, "de", "Films/Film (2001).ger.srt"),
    ("639-2t", None, "de", "Films/Film (2001).deu.srt"),
    ("639-1", None, "haw", "Films/Film (2001).haw.srt"),  # no two-letter code: three letters
    ("639-1", None, "jw", "Films/Film (2001).jv.srt"),  # whisper's Javanese code is not ISO's
])  # fmt: skip
def test_subtitle_names_in_each_code_style(codes, tag, language, expected):
    assert MediaLayout(codes=codes, tag=tag).subtitle_rel("Films/Film (2001).mkv", language, "srt") == expected


def test_videos_get_subtitles_beside_them_audio_keeps_the_mirror_and_translation_is_english():
    layout = MediaLayout(formats=("vtt", "srt"))
    assert layout.beside("a/b.MKV") == ("srt", "vtt") and layout.beside("book.m4b") == () and layout.beside("s.mp3") == ()
    assert written_language("translate", "de") == "en" and written_language("transcribe", "de") == "de"
    assert TranscriptionSettings(task="translate", language="de").subtitle_language_known() == "en"
    assert TranscriptionSettings(audio_language="fr").subtitle_language_known() is None  # a video may lack the track
    assert TranscriptionSettings().subtitle_language_known() is None
    assert language_in_style("pt", "639-2b") == "por"


@pytest.mark.parametrize(("name", "language"), [
    ("Film.en.srt", "en"), ("Film.eng.srt", "en"), ("Film.ger.ass", "de"), ("Film.deu.ssa", "de"), ("Film.pt-BR.vtt", "pt"),
    ("Film.en.hi.srt", "en"), ("Film.en.sdh.srt", "en"), ("Film.hi.srt", "hi"), ("Film.English.srt", "en"),
    ("Film.subgen.medium.eng.srt", "en"), ("Film.whisper.fr.srt", "fr"), ("Film.en.default.sub", "en"),
    ("Film.en.forced.srt", None), ("Film.forced.en.srt", None), ("Film.srt", None), ("Film.en.txt", None),
    ("Film.mkv", None), ("Other.en.srt", None), ("Film 2.en.srt", None), ("Film.x264.srt", None),
])  # fmt: skip
def test_sidecar_languages_in_every_style_forced_ones_do_not_count(name, language):
    assert sidecar_language("Film", name) == language


def test_a_matching_sidecar_is_found_by_language_in_any_code_style():
    names = ["Film.mkv", "Film.ger.srt", "Film.en.forced.srt", "Other.en.srt"]
    assert matching_sidecar("Film.mkv", names, "de") == "Film.ger.srt"
    assert matching_sidecar("Film.mkv", names, "en") is None


def test_a_sidecar_belongs_to_the_video_with_the_longest_stem_it_starts_with():
    names = ["Show.S01E01.Part2.mkv", "Show.S01E01.Part2.whisper.en.srt", "Show.S01E01.mkv", "Show.S01E01.de.srt",
             "Film.mkv", "Film.en.mkv", "Film.en.srt", "Film.en.fr.srt"]  # fmt: skip
    sidecars = FolderSidecars.of(names)
    assert sidecars.matching("Show.S01E01.mkv", "en") is None  # Part2's own subtitle is not the first part's
    assert sidecars.matching("Show.S01E01.Part2.mkv", "en") == "Show.S01E01.Part2.whisper.en.srt"
    assert sidecars.matching("Show.S01E01.mkv", "de") == "Show.S01E01.de.srt"
    assert sidecars.own("Film.mkv") == [] and sidecars.own("Film.en.mkv") == [("Film.en.fr.srt", "fr")]
    assert matching_sidecar("Show.S01E01.mkv", ["Show.S01E01.Part2.whisper.en.srt"], "en") == (
        "Show.S01E01.Part2.whisper.en.srt"  # no Part2 video in the folder: a sidecar of no other video counts
    )


def test_the_director_sees_a_sidecar_a_worker_relied_on_deleted_changed_or_taken_by_another_video(tmp_path):
    sidecar = tmp_path / "Show.S01E01.en.srt"
    sidecar.write_text("1\n")
    (tmp_path / "Show.S01E01.mkv").write_bytes(b"v")
    stat = sidecar.stat()
    record = SubtitledRecord(source="Show.S01E01.mkv", fingerprint=SourceFingerprint(size=1, mtime_ns=2), settings_key="k",
                             reason="r", language="en", at=0, sidecar=sidecar.name,
                             sidecar_fingerprint=SourceFingerprint(size=stat.st_size, mtime_ns=stat.st_mtime_ns))  # fmt: skip
    video = SourceFile("Show.S01E01.mkv", 1, 2)
    assert SubtitleCheck(tmp_path, tmp_path / "dest", 5).sidecar_holds(video, record)
    (tmp_path / "Show.S01E01.en.mkv").write_bytes(b"v")  # a video whose stem the sidecar also starts with, longer
    assert not SubtitleCheck(tmp_path, tmp_path / "dest", 5).sidecar_holds(video, record)
    (tmp_path / "Show.S01E01.en.mkv").unlink()
    sidecar.write_text("1\n2\n")
    assert not SubtitleCheck(tmp_path, tmp_path / "dest", 5).sidecar_holds(video, record)
    sidecar.unlink()
    assert not SubtitleCheck(tmp_path, tmp_path / "dest", 5).sidecar_holds(video, record)


def record(source="Films/Film.mkv", settings=MEDIA):
    return CommitRecord(source=source, fingerprint=SourceFingerprint(size=1, mtime_ns=2), settings_key=settings.key(),
                        settings=settings)  # fmt: skip


def test_a_subtitle_beside_the_video_is_written_and_a_foreign_one_is_never_replaced(tmp_path):
    source, dest = tmp_path / "source", tmp_path / "dest"
    (source / "Films").mkdir(parents=True)
    beside = BesideVideo(source, {"srt": source / "Films" / "Film.en.srt"})
    written = write_outputs(dest, "Films/Film", ("txt", "srt", "json"), RESULT, record(), OPTIONS, lambda: True, None, beside)
    assert [str(p.relative_to(tmp_path)) for p in written] == ["dest/Films/Film.txt", "source/Films/Film.en.srt",
                                                                "dest/Films/Film.json"]  # fmt: skip
    assert "Hello there." in (source / "Films" / "Film.en.srt").read_text() and not (dest / "Films" / "Film.srt").exists()
    assert json.loads((dest / "Films" / "Film.json").read_text())["fleet"]["media"] == {"srt": "Films/Film.en.srt"}
    # Our own subtitle is ours to rewrite; Bazarr's beside another film is not
    write_outputs(dest, "Films/Film", ("srt", "json"), RESULT, record(), OPTIONS, lambda: True, None, beside)
    bazarr = b"1\r\n00:00:00,000 --> 00:00:02,000\r\nBazarr\r\n"
    (source / "Films" / "Other.en.srt").write_bytes(bazarr)
    other = BesideVideo(source, {"srt": source / "Films" / "Other.en.srt"})
    write_outputs(dest, "Films/Other", ("srt", "json"), RESULT, record("Films/Other.mkv"), OPTIONS, lambda: True, None, other)
    assert (source / "Films" / "Other.en.srt").read_bytes() == bazarr
    kept = json.loads((dest / "Films" / "Other.json").read_text())["fleet"]
    assert kept["kept"] == ["srt"] and kept["media"] == {"srt": "Films/Other.en.srt"}  # done: not redone every round


def test_switching_to_the_media_layout_moves_the_subtitle_out_of_the_mirror_unless_edited(tmp_path):
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    for name, edit in (("a", False), ("b", True)):
        write_outputs(dest, name, ("srt", "json"), RESULT, record(f"{name}.mkv", TranscriptionSettings()), OPTIONS, lambda: True)
        if edit:
            (dest / f"{name}.srt").write_text("edited by hand")
        beside = BesideVideo(source, {"srt": source / f"{name}.en.srt"})
        write_outputs(dest, name, ("srt", "json"), RESULT, record(f"{name}.mkv"), OPTIONS, lambda: True, None, beside)
        assert (source / f"{name}.en.srt").exists()
    assert not (dest / "a.srt").exists() and (dest / "b.srt").read_text() == "edited by hand"


def test_the_plan_counts_subtitled_videos_from_the_check_and_from_a_workers_record():
    videos = [SourceFile("a.mkv", 1, 2), SourceFile("b.mkv", 1, 2), SourceFile("c.mp3", 1, 2), SourceFile("d.mkv", 1, 2)]
    asked = []

    def subtitled(source, language):
        asked.append((source.rel, language))
        return "has a subtitle in en: a.en.srt" if source.rel == "a.mkv" else None

    def plan(settings, **records):
        return plan_sources(PlanInputs(sources=videos, outputs={}, failures={}, ledger={}, settings=settings,
                                       formats=("srt", "json"), now=1e9, retention_s=3600, subtitled=subtitled,
                                       subtitled_records=records, sidecar_holds=lambda source, record: True))  # fmt: skip

    given = plan(TranscriptionSettings(language="en", media=MediaLayout()))
    assert [(d.source.rel, d.action) for d in given.decisions] == [
        ("a.mkv", Action.SUBTITLED),
        ("b.mkv", Action.ENQUEUE),
        ("c.mp3", Action.ENQUEUE),
        ("d.mkv", Action.ENQUEUE),
    ]
    assert asked == [("a.mkv", "en"), ("b.mkv", "en"), ("d.mkv", "en")]  # audio is never checked
    detecting = TranscriptionSettings(media=MediaLayout())  # the language is the worker's to find
    worker_said = worker_found(detecting, sidecar="d.de.srt")
    detected = plan(detecting, **{"d.mkv": worker_said})
    assert detected.counts()[Action.SUBTITLED] == 1 and len(asked) == 3
    off = plan(TranscriptionSettings(language="en", media=MediaLayout(skip_subtitled=False)))
    assert off.counts()[Action.ENQUEUE] == 4
    assert MediaLayout(skip_subtitled=False) != MediaLayout() and off.settings.key() == given.settings.key()


def worker_found(settings, sidecar=None, stream=None, size=1):
    """A worker's subtitled record for d.mkv (1 byte, mtime 2) under `settings`."""
    return SubtitledRecord(source="d.mkv", fingerprint=SourceFingerprint(size=size, mtime_ns=2), settings_key=settings.key(),
                           reason="has a subtitle in de", language="de", at=0, sidecar=sidecar, stream=stream,
                           sidecar_fingerprint=SourceFingerprint(size=5, mtime_ns=6) if sidecar else None)  # fmt: skip


@pytest.mark.parametrize(("record", "holds", "action"), [
    (worker_found(MEDIA, sidecar="d.de.srt"), True, Action.SUBTITLED),
    (worker_found(MEDIA, sidecar="d.de.srt"), False, Action.ENQUEUE),  # the sidecar deleted, changed, or another's now
    (worker_found(MEDIA, stream="ger"), False, Action.SUBTITLED),  # in the video: its fingerprint covers it
    (worker_found(MEDIA, stream="ger", size=9), True, Action.ENQUEUE),  # the video changed
    (worker_found(TranscriptionSettings(task="translate", media=MediaLayout()), stream="ger"), True, Action.ENQUEUE),
    (worker_found(MEDIA), True, Action.ENQUEUE),  # a record from before records said what they relied on
])  # fmt: skip
def test_a_workers_subtitled_finding_stands_only_while_what_it_relied_on_does(record, holds, action):
    inputs = PlanInputs(sources=[SourceFile("d.mkv", 1, 2)], outputs={}, failures={}, ledger={}, settings=MEDIA,
                        formats=("srt", "json"), now=1e9, retention_s=3600, subtitled=lambda source, language: None,
                        subtitled_records={"d.mkv": record}, sidecar_holds=lambda source, record: holds)  # fmt: skip
    assert plan_sources(inputs).decisions[0].action is action


def test_the_round_summary_goes_out_once_when_the_last_queued_file_is_finished(tmp_path):
    files = [SourceFile(name, 1, 2) for name in ("a.mkv", "b.mkv", "c.mkv")]
    settings = TranscriptionSettings()

    def plan(actions):
        inputs = PlanInputs(sources=files, outputs={}, failures={}, ledger={}, settings=settings, formats=("json",),
                            now=1e9, retention_s=3600)  # fmt: skip
        planned = plan_sources(inputs)
        for i, action in enumerate(actions):
            planned.decisions[i] = type(planned.decisions[i])(files[i], action, "empty file" if action is Action.FAILED else "x",
                                                              dedup_id=f"id-{i}")  # fmt: skip
        return planned

    with receiver() as got:
        urls = (got.url("/apprise", "json"),)
        assert follow_round(plan([Action.ENQUEUE] * 3), {"id-0", "id-1", "id-2"}, tmp_path, urls, 1.0) is None
        assert follow_round(plan([Action.DONE, Action.QUEUED, Action.FAILED]), set(), tmp_path, urls, 2.0) is None
        title = follow_round(plan([Action.DONE, Action.DONE, Action.FAILED]), set(), tmp_path, urls, 3.0)
        assert title == "whisper-fleet: 2 new transcripts, 1 failed"
        (message,) = got.wait_for("/apprise", 1)
        assert message["message"] == "failed: c.mkv: empty file"
        assert follow_round(plan([Action.DONE, Action.DONE, Action.FAILED]), set(), tmp_path, urls, 4.0) is None
    assert json.loads(round_path(tmp_path).read_text()) == {"waiting": {}, "finished": {}}
    assert len(got.bodies("/apprise")) == 1
    assert summary_message({"a": ("transcribed", "")})[0] == "whisper-fleet: 1 new transcript"


def test_media_settings_are_checked_at_start_with_their_variable_named(monkeypatch):
    monkeypatch.setenv("FLEET_MEDIA_TAG", "en")
    with pytest.raises(ValueError, match="FLEET_MEDIA_TAG: media tag 'en' reads as a language"):
        FleetSettings()
    monkeypatch.setenv("FLEET_MEDIA_TAG", "whisper")
    monkeypatch.setenv("FLEET_MEDIA_FORMATS", "txt")
    with pytest.raises(ValueError, match="FLEET_MEDIA_FORMATS"):
        FleetSettings()
    monkeypatch.setenv("FLEET_MEDIA_FORMATS", "vtt,srt")
    monkeypatch.setenv("FLEET_LAYOUT", "media")
    monkeypatch.setenv("FLEET_OUTPUT_FORMATS", "json")
    settings = FleetSettings()
    assert settings.formats() == ("srt", "vtt", "json") and settings.transcription().media.formats == ("srt", "vtt")
    assert settings.transcription().transcript_key() == TranscriptionSettings().transcript_key()  # a layout, not a transcript


def test_a_worker_in_the_media_layout_waits_while_the_source_is_read_only(tmp_path, monkeypatch):
    from fleet.roots import readiness

    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    dest.mkdir()
    (source / "film.mkv").write_bytes(b"x")
    monkeypatch.setattr(readiness.os, "access", lambda path, mode: not (mode & os.W_OK and path == source))  # a ro mount
    assert readiness.RootsWatch(source, dest, 0).problem() is None  # the mirror layout only reads it
    problem = readiness.RootsWatch(source, dest, 0, source_written=True).problem()
    assert problem.startswith(f"source not writable: {source} (FLEET_LAYOUT=media")


def test_a_probe_that_timed_out_is_not_repeated_for_an_hour_then_is(tmp_path, monkeypatch):
    import director.subtitle_check as subtitle_check

    calls = []
    monkeypatch.setattr(subtitle_check, "probe_embedded_languages", lambda path, timeout_s: calls.append(path))  # None: timed out
    (tmp_path / "Stalled.mkv").write_bytes(b"v")
    video, dest = SourceFile("Stalled.mkv", 1, 2), tmp_path / "dest"
    for now, probes in ((1000.0, 1), (1000.0 + 3599, 1), (1000.0 + 3601, 2)):
        check = SubtitleCheck(tmp_path, dest, 1, now)
        assert check(video, "en") is None  # planned as having no subtitle stream: transcribed, not skipped
        check.save()
        assert len(calls) == probes


def test_a_video_without_speech_gets_no_empty_subtitle_beside_it_and_counts_as_done(tmp_path):
    from fleet.state.done import done_check, probe_outputs

    source, dest = tmp_path / "source", tmp_path / "dest"
    (source / "Films").mkdir(parents=True)
    beside = BesideVideo(source, {"srt": source / "Films" / "Quiet.en.srt"})
    silence = {"segments": [], "language": "en"}
    written = write_outputs(dest, "Films/Quiet", ("txt", "srt", "json"), silence, record("Films/Quiet.mkv"), OPTIONS,
                            lambda: True, None, beside)  # fmt: skip
    assert [p.name for p in written] == ["Quiet.txt", "Quiet.json"] and not list((source / "Films").iterdir())
    kept = json.loads((dest / "Films" / "Quiet.json").read_text())["fleet"]
    assert kept["silent"] == ["srt"] and kept["media"] == {}
    state = probe_outputs(dest, ["Films/Quiet"], ("txt", "srt", "json"), source)["Films/Quiet"]
    assert done_check("Films/Quiet.mkv", SourceFingerprint(size=1, mtime_ns=2).value(), MEDIA.key(),
                      frozenset({"txt", "srt", "json"}), state).done  # fmt: skip
