"""The speech models and what runs them: windows, decoding, repetition, word timings, alignment, speakers."""
