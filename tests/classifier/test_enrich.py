from classifier.enrich import background_texts


def test_it_has_a_thousand_distinct_texts() -> None:
    texts = background_texts()
    assert len(texts) >= 1000
    assert len(set(texts)) == len(texts)
    assert len({t.lower() for t in texts}) == len(texts)


def test_texts_are_short_sentences() -> None:
    lengths = [len(t.split()) for t in background_texts()]
    assert min(lengths) >= 5
    assert max(lengths) <= 40
    assert all(t == t.strip() and "\n" not in t for t in background_texts())


def test_callers_get_their_own_list() -> None:
    texts = background_texts()
    texts.clear()
    assert len(background_texts()) >= 1000
