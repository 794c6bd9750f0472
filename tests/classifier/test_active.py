import numpy as np
import pytest

from classifier.active import most_uncertain, uncertainty


def test_one_vs_rest_asks_first_about_the_concept_nearest_a_coin_toss() -> None:
    P = [
        [0.99, 0.01],  # sure on both concepts
        [0.55, 0.02],  # unsure about the first concept
        [0.10, 0.40],  # unsure about the second
        [0.70, 0.70],  # moderately unsure about both
        [0.50, 0.99],  # a coin toss on the first: the least certain of all
    ]
    assert most_uncertain(P).tolist() == [4, 1, 2, 3, 0]
    assert uncertainty(P) == pytest.approx([0.02, 0.9, 0.8, 0.6, 1.0])


def test_one_vs_rest_counts_the_least_sure_concept_even_when_another_is_sure() -> None:
    # An input can carry several concepts: being sure it is "spam" says nothing about
    # whether it is also "urgent".
    P = [[0.98, 0.98, 0.98], [0.99, 0.45, 0.01]]
    assert most_uncertain(P).tolist() == [1, 0]


def test_exclusive_asks_first_where_the_top_two_concepts_are_closest() -> None:
    P = [
        [0.90, 0.05, 0.05],  # margin 0.85
        [0.40, 0.35, 0.25],  # margin 0.05: the least certain
        [0.20, 0.50, 0.30],  # margin 0.20
        [0.33, 0.34, 0.33],  # margin 0.01, whichever column is on top
    ]
    assert most_uncertain(P, exclusive=True).tolist() == [3, 1, 2, 0]
    assert uncertainty(P, exclusive=True) == pytest.approx([0.15, 0.95, 0.8, 0.99])


def test_exclusive_and_one_vs_rest_can_disagree_on_the_same_rows() -> None:
    # The first row is split evenly between two concepts; the second has one concept at
    # exactly 0.5 but its runner-up 0.1 behind. Margin and distance to 0.5 disagree.
    P = [[0.45, 0.45, 0.10], [0.50, 0.10, 0.40]]
    assert most_uncertain(P, exclusive=True).tolist() == [0, 1]
    assert most_uncertain(P, exclusive=False).tolist() == [1, 0]


def test_ties_keep_the_texts_order() -> None:
    # 0.3 and 0.7 are equally far from 0.5, though not in floating point.
    P = np.array([[0.9], [0.3], [0.7], [0.1], [0.3], [0.7]])
    assert most_uncertain(P).tolist() == [1, 2, 4, 5, 0, 3]
    exclusive = np.array([[0.6, 0.4], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    assert most_uncertain(exclusive, exclusive=True).tolist() == [0, 2, 3, 1]


def test_one_concept_exclusive_falls_back_to_distance_from_a_coin_toss() -> None:
    # A single softmax column is always 1, but the caller may still pass sigmoid scores.
    assert most_uncertain([[0.9], [0.5]], exclusive=True).tolist() == [1, 0]


def test_no_texts_gives_no_order() -> None:
    for P in (np.zeros((0, 3)), np.zeros((0, 0))):
        order = most_uncertain(P)
        assert order.shape == (0,)
        assert order.dtype.kind == "i"
    assert uncertainty(np.zeros((0, 2)), exclusive=True).shape == (0,)


def test_texts_without_concepts_are_all_equally_uncertain() -> None:
    assert most_uncertain(np.zeros((3, 0))).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "bad",
    [
        [0.2, 0.5, 0.9],  # one text's row without the row dimension
        0.5,
        np.zeros((2, 2, 2)),
        [[0.1, 0.2], [0.3]],  # ragged rows
    ],
)
def test_it_rejects_arrays_of_the_wrong_shape(bad: object) -> None:
    with pytest.raises(ValueError):
        most_uncertain(bad)
    with pytest.raises(ValueError):
        uncertainty(bad, exclusive=True)


@pytest.mark.parametrize("bad", [[[0.2, 1.5]], [[-0.1, 0.5]], [[np.nan, 0.5]], [["a", "b"]]])
def test_it_rejects_values_that_are_not_probabilities(bad: object) -> None:
    with pytest.raises(ValueError):
        most_uncertain(bad)
