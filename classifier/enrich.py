"""Enrich dataset: generic background texts that teach a head what its concepts are *not*.

With **Enrich dataset = Automatic**, training adds the embeddings of these texts (news-like
sentences, chat messages, questions, reviews, instructions, weather, sports, cooking,
travel, tech support, small talk...) as extra negatives to every concept of a one-vs-rest
head (`ConceptHead(..., background=...)`). A head trained on a few dozen spam and ham
messages has never seen a sentence about the weather, so without them it may give such a
sentence a high "spam" probability; with them, off-topic texts score low for every concept.
Together the background rows weigh half as much as the labeled examples, so a thousand of
them don't drown out ten positives (see `classifier.head`).

For mutually exclusive concepts Enrich does nothing: a softmax head has no "none of these"
class, every input gets probabilities summing to 1 over the concepts, and adding the texts
as negatives of every class at once would be meaningless. **Disabled** never adds them.

The texts were written for this project (one per line, deduplicated, 5-40 words) and live
in ``corpus/background.txt`` (not ``data/``: the project's .gitignore ignores every ``data/``
folder). The portal embeds them once per base model through its embedding cache.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def _load() -> tuple[str, ...]:
    text = resources.files("classifier").joinpath("corpus/background.txt").read_text("utf-8")
    return tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def background_texts() -> list[str]:
    """The background corpus, in file order (a fresh list: callers may change it)."""
    return list(_load())
