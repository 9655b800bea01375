"""Names of outputs: the mirror layout, the media layout beside each video, subtitles already there."""
