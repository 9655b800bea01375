"""A tiny wav2vec2 CTC model built locally, so whisperX's real alignment code runs offline.

Its weights are random, so word times are structurally valid but meaningless; what the tests
check is that the worker's alignment path (load, align, word timings in the JSON) works.
"""

from __future__ import annotations

import json
from pathlib import Path

PUNKT_FILES = ("collocations.tab", "sent_starters.txt", "sentence_starters.txt", "abbrev_types.txt", "ortho_context.tab")


def build_tiny_align_model(folder: Path) -> Path:
    """save_pretrained a 2-layer Wav2Vec2ForCTC with a lower-case character vocabulary."""
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor

    folder.mkdir(parents=True, exist_ok=True)
    chars = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
    vocab_path = folder / "vocab.json"
    vocab_path.write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab_path), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = Wav2Vec2Config(
        vocab_size=len(chars), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32, 32, 32, 32, 32, 32), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )  # fmt: skip
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


def offline_punkt(nltk_data: Path) -> Path:
    """NLTK's punkt_tab for English with no learned abbreviations: enough to split sentences."""
    folder = nltk_data / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PUNKT_FILES:
        (folder / name).touch()
    return nltk_data
