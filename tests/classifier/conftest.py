"""Fixtures for the machine-learning core: the real bundled model, loaded once per run."""

import numpy as np
import pytest

from classifier.embedders import Embedder, get_embedder

SPAM_TRAIN = [
    "Congratulations! You have won a 1000 pound gift card. Text CLAIM to 80088 now.",
    "URGENT: your account has been selected for a cash prize, call 0906 123 4567 today.",
    "Free entry in our weekly draw to win a new phone, reply WIN to enter.",
    "You are a lucky winner of a luxury holiday, claim your reward before midnight.",
    "Get cheap loans approved in minutes, no credit checks, apply at quickcash.biz",
    "Final notice: your prize of 500 dollars is waiting, reply YES to collect it.",
    "Hot singles in your area want to meet you tonight, click the link to chat.",
    "Earn 3000 a week working from home, no experience needed, sign up now!",
    "Your mobile number has won our monthly jackpot. Call now to claim, 1.50 per minute.",
    "Exclusive offer: 90% off designer watches, today only, order at bestdeals.example",
    "Winner! As a valued customer you get a free ringtone, text TONE to 87121.",
    "Limited time: claim your free iPhone by completing this short survey.",
]
HAM_TRAIN = [
    "Are we still meeting for lunch tomorrow at the usual place?",
    "I'll be home late tonight, don't wait for me for dinner.",
    "Can you send me the notes from today's lecture?",
    "Happy birthday mate, hope you have a great day!",
    "Mum wants to know if you're coming on Sunday.",
    "Running a bit late, the traffic is terrible. See you in 15.",
    "Thanks for helping me move yesterday, I owe you a pizza.",
    "Did you remember to buy milk on your way back?",
    "The meeting has moved to 3pm in room 2, see you there.",
    "Just got home, that film was so good. Talk tomorrow.",
    "Can I borrow your charger? Mine stopped working.",
    "Let me know when you land so I can pick you up.",
]
SPAM_TEST = [
    "You have been chosen to receive a cash reward of 2000 pounds, call now to claim.",
    "WIN a brand new car! Text DRIVE to 80808 for your free entry.",
    "Congratulations, your number won the prize draw, reply to claim your voucher.",
    "Cheap meds online, no prescription needed, huge discounts, order now.",
    "Claim your free holiday voucher today, just reply YES.",
    "You've won a free gift! Click here to collect your reward.",
]
HAM_TEST = [
    "What time should I come over this evening?",
    "Sorry I missed your call, I was in the shower.",
    "See you at the station at six, don't be late.",
    "Could you pick up the kids from school today?",
    "I'm at the supermarket, do we need anything?",
    "Good luck with your exam tomorrow!",
]
OFF_TOPIC = [
    "the weather is sunny in Paris today",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The river Danube flows through ten countries before reaching the Black Sea.",
    "Add two cups of flour and a pinch of salt to the bowl.",
    "The striker scored in the ninetieth minute to win the league.",
    "My printer keeps jamming when I print double-sided pages.",
]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder()


class SpamHam:
    """A tiny labeled set, embedded: concepts ("spam", "ham") as columns of Y."""

    concepts = ("spam", "ham")

    def __init__(self, embedder: Embedder) -> None:
        self.X_train = embedder.encode(SPAM_TRAIN + HAM_TRAIN)
        self.y_train = np.array([0] * len(SPAM_TRAIN) + [1] * len(HAM_TRAIN))
        self.X_test = embedder.encode(SPAM_TEST + HAM_TEST)
        self.y_test = np.array([0] * len(SPAM_TEST) + [1] * len(HAM_TEST))
        self.X_off_topic = embedder.encode(OFF_TOPIC)

    @property
    def Y_train(self) -> np.ndarray:
        """Each input labeled only with its own concept (the other one unknown)."""
        return one_concept_labels(self.y_train, 2)


def one_concept_labels(y: np.ndarray, n_concepts: int) -> np.ndarray:
    """Label matrix with 1 at each row's class and -1 (unknown) elsewhere."""
    Y = np.full((len(y), n_concepts), -1, dtype=np.int8)
    Y[np.arange(len(y)), y] = 1
    return Y


@pytest.fixture(scope="session")
def spam_ham(embedder: Embedder) -> SpamHam:
    return SpamHam(embedder)
