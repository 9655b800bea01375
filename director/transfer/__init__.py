"""The home side of workers anywhere: stage queued files' audio into the bucket, bring finished outputs home."""
