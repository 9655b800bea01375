"""`fleet asr`: a whisper-asr-webservice-compatible door (Bazarr's Whisper provider) into the fleet's queue."""
