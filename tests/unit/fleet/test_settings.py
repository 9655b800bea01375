"""Settings: environment names, validation with one-line errors, create_queue.json overrides."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from app.cli import main
from fleet.job.identity import DecodingOptions
from fleet.settings import FleetSettings
from fleet.transport.spec import QueueSpecError, fifo_names, load_queue_spec
from tests.support.paths import REPO_ROOT


def test_environment_names(monkeypatch):
    monkeypatch.setenv("FLEET_SOURCE_DIR", "/srv/audio")
    monkeypatch.setenv("WHISPER_MODEL", "tiny.en")
    monkeypatch.setenv("WHISPER_LANGUAGE", "")
    monkeypatch.setenv("FLEET_OUTPUT_FORMATS", "srt, TXT")
    settings = FleetSettings()
    assert str(settings.source_dir) == "/srv/audio"
    assert settings.transcription().model == "tiny.en"
    assert settings.whisper_language is None
    assert settings.output_formats == ("txt", "srt", "json")  # json always: it is the commit record


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("FLEET_OUTPUT_FORMATS", "txt,docx")
    with pytest.raises(ValidationError, match="docx"):
        FleetSettings()


def test_cli_turns_a_bad_setting_into_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("WHISPER_MIN_SPEAKERS", "3")
    monkeypatch.setenv("WHISPER_MAX_SPEAKERS", "2")
    assert main(["director", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fleet: invalid setting") and "\n" not in err


def test_speed_knobs_do_not_change_the_settings_key():
    assert FleetSettings(whisper_device="cuda", whisper_batch_size=32).transcription() == FleetSettings().transcription()


def test_decoding_options_at_whisperx_defaults_keep_the_key_of_old_transcripts():
    # The key a default transcript had before decoding options existed (8 fields + 3 layout ones)
    assert FleetSettings().transcription().key() == "7b2e180e23da1a18"
    prompted = FleetSettings(decoding=DecodingOptions(initial_prompt="Kubernetes, ComfyUI")).transcription()
    assert prompted.key() != FleetSettings().transcription().key()
    assert FleetSettings(decoding=DecodingOptions(beam_size=1)).transcription().key() != prompted.key()
    assert FleetSettings().decoding.temperatures() == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert FleetSettings(decoding=DecodingOptions(temperature_increment_on_fallback=None)).decoding.temperatures() == (0.0,)


def test_decoding_options_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("WHISPER_NO_SPEECH_THRESHOLD", "None")  # whisperX's CLI spelling turns it off
    monkeypatch.setenv("WHISPER_COMPRESSION_RATIO_THRESHOLD", "")  # empty keeps the default
    monkeypatch.setenv("WHISPER_SUPPRESS_TOKENS", "-1, 50363")
    decoding = FleetSettings().transcription().decoding
    assert decoding.no_speech_threshold is None and decoding.compression_ratio_threshold == 2.4
    assert decoding.suppress_tokens == (-1, 50363)
    monkeypatch.setenv("WHISPER_CHUNK_SIZE", "45")
    assert main(["director", "--dry-run"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "fleet: invalid settings: WHISPER_CHUNK_SIZE: Input should be less than or equal to 30"


def test_queue_spec_defaults_and_overrides():
    spec = load_queue_spec(REPO_ROOT / "create_queue.json")
    assert (spec.queue_name, spec.dlq_name) == ("whisper-fleet.fifo", "whisper-fleet-dlq.fifo")
    assert spec.queue_attributes["FifoQueue"] == "true" and spec.max_receive_count == 100
    other = load_queue_spec(REPO_ROOT / "create_queue.json", queue_name="home.fifo", max_receive_count=2)
    assert (other.queue_name, other.dlq_name, other.max_receive_count) == ("home.fifo", "home-dlq.fifo", 2)
    assert fifo_names("x") == ("x.fifo", "x-dlq.fifo")


def test_queue_spec_must_describe_fifo_queues(tmp_path):
    raw = json.loads((REPO_ROOT / "create_queue.json").read_text())
    raw["dead_letter_queue"]["Attributes"]["FifoQueue"] = "false"
    path = tmp_path / "q.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(QueueSpecError, match="FIFO"):
        load_queue_spec(path)
    with pytest.raises(QueueSpecError, match="cannot read"):
        load_queue_spec(tmp_path / "missing.json")


def test_the_same_folder_or_a_source_inside_the_destination_is_refused(tmp_path):
    media = tmp_path / "media"
    (media / "transcripts").mkdir(parents=True)
    with pytest.raises(ValidationError, match="are the same folder"):
        FleetSettings(source_dir=media, dest_dir=tmp_path / "." / "media")
    (tmp_path / "twice").symlink_to(media)  # like one folder mounted twice: another name, the same inode
    with pytest.raises(ValidationError, match="are the same folder"):
        FleetSettings(source_dir=media, dest_dir=tmp_path / "twice")
    with pytest.raises(ValidationError, match="lies inside FLEET_DEST_DIR"):
        FleetSettings(source_dir=media / "transcripts", dest_dir=media)
    # The destination inside the source is fine: the scan never enters it
    assert FleetSettings(source_dir=media, dest_dir=media / "transcripts").dest_dir == media / "transcripts"


def test_overlapping_roots_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["director", "--source", str(tmp_path), "--dest", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("fleet: invalid settings: FLEET_SOURCE_DIR and FLEET_DEST_DIR are the same folder")


def test_the_transfer_bucket_is_an_s3_url_and_its_queue_sits_beside_the_job_queue(monkeypatch, capsys):
    monkeypatch.setenv("FLEET_TRANSFER_BUCKET", "s3://fleet-transfer/home/")
    settings = FleetSettings(queue_name="library")
    assert (settings.transfer_bucket.bucket, settings.transfer_bucket.prefix) == ("fleet-transfer", "home")
    assert (settings.transfer_queue_spec().queue_name, settings.transfer_queue_spec().dlq_name) == (
        "library-transfer.fifo", "library-transfer-dlq.fifo")  # fmt: skip
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://minio.lan:9000")  # boto3's own variable for S3 alone
    assert FleetSettings(aws_endpoint_url="http://queue.lan:4566").transfer_endpoint().url == "http://minio.lan:9000"
    monkeypatch.setenv("FLEET_TRANSFER_BUCKET", "")  # what compose passes when .env leaves it empty
    assert FleetSettings().transfer_bucket is None
    monkeypatch.setenv("FLEET_TRANSFER_BUCKET", "https://bucket.example/x")
    assert main(["worker", "--check"]) == 2
    assert capsys.readouterr().err.startswith("fleet: invalid setting FLEET_TRANSFER_BUCKET: Value error, not an S3 bucket URL")


def test_a_worker_is_remote_only_with_a_bucket_and_neither_root(monkeypatch):
    from app.cli import build_parser, works_remotely

    monkeypatch.delenv("FLEET_SOURCE_DIR", raising=False)
    monkeypatch.delenv("FLEET_DEST_DIR", raising=False)
    bucket = FleetSettings(transfer_bucket="s3://fleet")
    assert works_remotely(build_parser().parse_args(["worker"]), bucket)
    assert not works_remotely(build_parser().parse_args(["worker", "--dest", "/d"]), bucket)
    assert not works_remotely(build_parser().parse_args(["worker"]), FleetSettings())
    monkeypatch.setenv("FLEET_SOURCE_DIR", "/library")
    assert not works_remotely(build_parser().parse_args(["worker"]), bucket)


def test_a_local_run_with_no_worker_of_its_own_needs_remote_workers(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("FLEET_TRANSFER_BUCKET", raising=False)
    assert main(["local", str(tmp_path / "in"), str(tmp_path / "out"), "--workers", "0"]) == 2
    assert capsys.readouterr().err == (
        "fleet: --workers must be 1 or more (0 only with FLEET_TRANSFER_BUCKET, where remote workers transcribe)\n"
    )
    assert not (tmp_path / "out").exists()
