"""Intake's trained classifier: TF-IDF of characters and words over the message as written and
diacritics-folded, a logistic regression, a temperature-calibrated probability as confidence.

Training uses scikit-learn; classifying uses the `Classifier` compiled from it: the same
features and weights as plain arrays (one message in well under a millisecond, and a model
file that loads without unpickling). Pure computation: files live in `models.py`.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from services.intake.domain import Prediction, accented_words, fold
from shared.events import LegalField

MAX_TRIAGE = 0.10
"""The threshold may send at most this share of legal questions to triage (issue 14)."""

VIEWS: tuple[tuple[str, Callable[[str], str], str, tuple[int, int]], ...] = (
    ("chars", accented_words, "char_wb", (2, 5)),
    ("words", accented_words, "word", (1, 2)),
    ("folded_chars", fold, "char_wb", (2, 5)),
    ("folded_words", fold, "word", (1, 2)),
)
"""Characters (word-bounded 2–5) and words (1–2) of the message as written, and of it with
diacritics folded: one more view for customers who write without accents, not instead."""

_TEXTS = {"accented": accented_words, "folded": fold}


@dataclass(frozen=True)
class Example:
    """A labelled message: the field a lawyer gives it, and fields they would also accept."""

    text: str
    legal_field: LegalField
    also_accept: tuple[LegalField, ...] = ()
    styles: tuple[str, ...] = ()
    is_dispute: bool | None = None
    """Whether it describes a dispute with another party; None: not labelled."""

    def accepts(self, predicted: LegalField) -> bool:
        """True when a lawyer takes `predicted` for this message."""
        return predicted == self.legal_field or predicted in self.also_accept


def features() -> FeatureUnion:
    """The TF-IDF views of `VIEWS`, side by side."""
    return FeatureUnion(
        [
            (
                name,
                TfidfVectorizer(
                    preprocessor=text,
                    analyzer=analyzer,
                    ngram_range=ngrams,
                    sublinear_tf=True,
                    min_df=2,
                    token_pattern=r"(?u)\b\w+\b" if analyzer == "word" else None,
                    dtype=np.float64,
                ),
            )
            for name, text, analyzer, ngrams in VIEWS
        ]
    )


def linear(*, c: float = 3.0) -> Pipeline:
    """Features, then a multinomial logistic regression (C chosen by 5-fold cross-validation
    on the training corpus among 3, 10, 30, 100: 83.4 %, 83.1 %, 83.1 %, 82.8 %)."""
    return Pipeline([("features", features()), ("model", LogisticRegression(C=c, max_iter=3000))])


def word_char_ngrams(word: str, low: int, high: int) -> tuple[str, ...]:
    """One word's character n-grams, padded with a space each side (a word shorter than n
    counts once, whole, and ends its longer n-grams), as scikit-learn's 'char_wb' analyzer
    reads each word (a view remembers each word's indexes: `View.indexes`)."""
    w = f" {word} "
    size = len(w)
    grams: list[str] = []
    for n in range(low, high + 1):
        if size <= n:
            grams.append(w)
            break
        grams += [w[i : i + n] for i in range(size - n + 1)]
    return tuple(grams)


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """Word n-grams (words: runs of letters and digits), as scikit-learn's 'word' analyzer."""
    tokens = text.split()
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


@dataclass(frozen=True)
class View:
    """One TF-IDF view as arrays: its vocabulary, idf weights and place in the feature row."""

    name: str
    text: str
    """'accented' or 'folded'."""
    analyzer: str
    ngrams: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int

    @cached_property
    def known(self) -> dict[str, int]:
        """Each term's place in the whole feature row."""
        return {term: self.offset + i for term, i in self.vocabulary.items()}

    @cached_property
    def _word_terms(self) -> dict[str, tuple[int, ...]]:
        """Per word seen, the feature indexes of its known character n-grams (a char_wb
        view's n-grams never cross words, and most words were seen before)."""
        return {}

    def indexes(self, text: str) -> list[int]:
        """The feature index of each known n-gram of the text (prepared as the view reads
        it), once per occurrence."""
        known = self.known
        low, high = self.ngrams
        if self.analyzer != "char_wb":
            return [i for i in map(known.get, word_ngrams(text, low, high)) if i is not None]
        cache = self._word_terms
        found: list[int] = []
        for word in text.split():
            terms = cache.get(word)
            if terms is None:
                grams = word_char_ngrams(word, low, high)
                terms = tuple(i for i in map(known.get, grams) if i is not None)
                if len(cache) < WORD_CACHE:
                    cache[word] = terms
            found += terms
        return found


WORD_CACHE = 16_384
"""Words whose n-gram indexes a char_wb view remembers (≤ 4 MB; Vietnamese is written in a
few thousand syllables, so most words were seen before)."""


def tf_idf(
    found: list[int], idf: np.ndarray, starts: np.ndarray, views: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct indexes and their sublinear TF-IDF values, l2-normalised view by view
    (scikit-learn's `sublinear_tf=True, norm="l2"` per vectorizer of a FeatureUnion), from
    each occurrence's index in the whole feature row. `starts` holds where each view but
    the first begins in the row; all views are counted and normalised in one pass."""
    if not found:
        return np.empty(0, dtype=np.intp), np.empty(0)
    indexes, counts = np.unique(np.asarray(found, dtype=np.intp), return_counts=True)
    values = (1.0 + np.log(counts)) * idf[indexes]
    view = np.searchsorted(starts, indexes, side="right")
    norms = np.sqrt(np.bincount(view, weights=values * values, minlength=views))
    return indexes, values / norms[view]


@dataclass(frozen=True)
class Classifier:
    """A trained model ready to classify: views, weights, temperature and triage threshold."""

    views: tuple[View, ...]
    classes: tuple[LegalField, ...]
    coef: np.ndarray
    """(classes × features) weights of the linear model."""
    intercept: np.ndarray
    temperature: float
    """Logits are divided by it before the softmax: fitted on held-out folds."""
    threshold: float
    """Below this probability the case is `other` and goes to triage."""
    dispute_coef: np.ndarray | None = None
    """Weights of the dispute head (a logistic regression on the same features), if any."""
    dispute_intercept: float = 0.0

    def features(self, message: str) -> tuple[np.ndarray, np.ndarray]:
        """The message's non-zero feature indexes and their TF-IDF values (each view
        normalised on its own, as scikit-learn's FeatureUnion of vectorizers)."""
        texts = {kind: prepare(message) for kind, prepare in _TEXTS.items()}
        found: list[int] = []
        for view in self.views:
            found += view.indexes(texts[view.text])
        return tf_idf(found, self.idf, self.starts, len(self.views))

    @cached_property
    def starts(self) -> np.ndarray:
        """Where each view but the first begins in the feature row."""
        return np.array([view.offset for view in self.views[1:]], dtype=np.intp)

    @cached_property
    def idf(self) -> np.ndarray:
        """Every feature's idf weight, in the row's order."""
        return np.concatenate([view.idf for view in self.views])

    def logits(self, message: str) -> np.ndarray:
        """The linear model's scores of each class for the message."""
        return self._logits(*self.features(message))

    def _logits(self, indexes: np.ndarray, values: np.ndarray) -> np.ndarray:
        if not len(indexes):
            return self.intercept.copy()
        return values @ self.weights[indexes] + self.intercept

    @cached_property
    def weights(self) -> np.ndarray:
        """(features × classes) weights, rows contiguous: a message gathers its rows."""
        return np.ascontiguousarray(self.coef.T)

    def predict(self, message: str) -> Prediction:
        """The most probable field, its calibrated probability, and the dispute head's
        reading (probability ≥ 0.5)."""
        indexes, values = self.features(message)
        z = self._logits(indexes, values) / self.temperature
        e = np.exp(z - z.max())
        p = e / e.sum()
        best = int(p.argmax())
        dispute = False
        if self.dispute_coef is not None:
            score = float(values @ self.dispute_coef[indexes]) if len(indexes) else 0.0
            dispute = score + self.dispute_intercept >= 0.0
        return Prediction(self.classes[best], float(p[best]), is_dispute=dispute)


def compile_pipeline(
    fitted: Pipeline,
    *,
    temperature: float,
    threshold: float,
    dispute: LogisticRegression | None = None,
) -> Classifier:
    """The fitted scikit-learn pipeline as plain arrays."""
    union: FeatureUnion = fitted.named_steps["features"]
    model: LogisticRegression = fitted.named_steps["model"]
    views, offset = [], 0
    for (name, vectorizer), (_, text, analyzer, ngrams) in zip(
        union.transformer_list, VIEWS, strict=True
    ):
        vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        kind = "folded" if text is fold else "accented"
        views.append(View(name, kind, analyzer, ngrams, vocabulary, vectorizer.idf_.copy(), offset))
        offset += len(vocabulary)
    return Classifier(
        views=tuple(views),
        classes=tuple(LegalField(c) for c in model.classes_),
        coef=np.ascontiguousarray(model.coef_, dtype=np.float64),
        intercept=model.intercept_.astype(np.float64),
        temperature=temperature,
        threshold=threshold,
        dispute_coef=dispute.coef_[0].astype(np.float64) if dispute is not None else None,
        dispute_intercept=float(dispute.intercept_[0]) if dispute is not None else 0.0,
    )


def fit_dispute(fitted: Pipeline, examples: Sequence[Example]) -> LogisticRegression | None:
    """A dispute head on the fitted features, from the examples labelled for it (None when
    they do not show both kinds)."""
    labelled = [e for e in examples if e.is_dispute is not None]
    if len({e.is_dispute for e in labelled}) < 2:
        return None
    features = fitted.named_steps["features"].transform([e.text for e in labelled])
    return LogisticRegression(C=3.0, max_iter=3000).fit(
        features, [bool(e.is_dispute) for e in labelled]
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log-loss of held-out logits (labels: class
    indexes)."""

    def loss(log_t: float) -> float:
        scaled = log_softmax(logits / math.exp(log_t), axis=1)
        return float(-scaled[np.arange(len(labels)), labels].mean())

    found = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded")
    return math.exp(float(found.x))


def held_out_logits(texts: list[str], labels: list[str], classes: list[str]) -> np.ndarray:
    """Each example's logits from a model trained without it (stratified folds)."""
    smallest = min(Counter(labels).values())
    splitter = StratifiedKFold(n_splits=max(2, min(5, smallest)), shuffle=True, random_state=0)
    out = np.zeros((len(texts), len(classes)))
    for train, test in splitter.split(texts, labels):
        fold_model = linear().fit([texts[i] for i in train], [labels[i] for i in train])
        scores = fold_model.decision_function([texts[i] for i in test])
        columns = [classes.index(c) for c in fold_model.classes_]
        out[np.ix_(test, columns)] = scores
        missing = [j for j in range(len(classes)) if j not in columns]
        out[np.ix_(test, missing)] = -1e3
    return out


@dataclass(frozen=True)
class ThresholdChoice:
    """A triage threshold and what it gives on cross-validated predictions."""

    threshold: float
    accuracy: float
    """Share of messages given an accepted field (`other` below the threshold)."""
    precision: float
    """Share of messages given a legal field (not triaged) whose field is accepted."""
    triage_rate: float
    """Share of legal questions (true field not `other`) sent to triage."""


def decided(prediction: Prediction, threshold: float) -> LegalField:
    """The field intake gives: the prediction, or `other` (triage) below the threshold."""
    return prediction.legal_field if prediction.probability >= threshold else LegalField.OTHER


def at_threshold(
    examples: Sequence[Example], predictions: Sequence[Prediction], threshold: float
) -> ThresholdChoice:
    """Accuracy, precision and triage rate of the predictions at `threshold`."""
    given = [decided(p, threshold) for p in predictions]
    scores = score(examples, given)
    routed = [e.accepts(g) for e, g in zip(examples, given, strict=True) if g != LegalField.OTHER]
    return ThresholdChoice(
        threshold=threshold,
        accuracy=scores.accuracy,
        precision=sum(routed) / len(routed) if routed else 0.0,
        triage_rate=scores.triage_rate,
    )


def choose_threshold(
    examples: Sequence[Example],
    predictions: Sequence[Prediction],
    *,
    max_triage: float = MAX_TRIAGE,
) -> ThresholdChoice:
    """The threshold with the best accuracy whose triage rate stays within `max_triage`;
    among equally good ones the middle (they decide the held-out folds alike)."""
    options = [at_threshold(examples, predictions, t / 100) for t in range(100)]
    allowed = [o for o in options if o.triage_rate <= max_triage] or options[:1]
    best = max(round(o.accuracy, 9) for o in allowed)
    tied = [o for o in allowed if round(o.accuracy, 9) == best]
    return tied[len(tied) // 2]


@dataclass(frozen=True)
class Trained:
    """A compiled classifier and what cross-validation on its training data said."""

    classifier: Classifier
    cross_validated: ThresholdChoice
    examples: int


def train(examples: Sequence[Example], *, max_triage: float = MAX_TRIAGE) -> Trained:
    """Fit on the examples: held-out folds give the temperature and the threshold, then the
    model is fitted on all of them."""
    texts = [e.text for e in examples]
    labels = [e.legal_field.value for e in examples]
    classes = sorted(set(labels))
    logits = held_out_logits(texts, labels, classes)
    temperature = fit_temperature(logits, np.array([classes.index(y) for y in labels]))
    probabilities = np.exp(log_softmax(logits / temperature, axis=1))
    held_out = [
        Prediction(LegalField(classes[int(row.argmax())]), float(row.max()))
        for row in probabilities
    ]
    choice = choose_threshold(examples, held_out, max_triage=max_triage)
    fitted = linear().fit(texts, labels)
    classifier = compile_pipeline(
        fitted,
        temperature=temperature,
        threshold=choice.threshold,
        dispute=fit_dispute(fitted, examples),
    )
    return Trained(classifier, choice, len(examples))


@dataclass(frozen=True)
class Scores:
    """Accuracy of decided fields on a labelled set: overall, per style, per field."""

    accuracy: float
    triage_rate: float
    """Share of legal questions (true field not `other`) given `other`."""
    count: int
    per_style: dict[str, float]
    per_field: dict[str, float]
    dispute: float | None = None
    """Share of dispute-labelled examples whose dispute reading is right."""


def score(
    examples: Sequence[Example],
    given: Sequence[LegalField],
    disputes: Sequence[bool] | None = None,
) -> Scores:
    """How many decided fields a lawyer accepts, overall, per style and per true field."""
    right = [e.accepts(g) for e, g in zip(examples, given, strict=True)]
    styles: dict[str, list[bool]] = {}
    fields: dict[str, list[bool]] = {}
    for example, ok in zip(examples, right, strict=True):
        for style in example.styles:
            styles.setdefault(style, []).append(ok)
        fields.setdefault(example.legal_field.value, []).append(ok)
    legal = [g for e, g in zip(examples, given, strict=True) if e.legal_field != LegalField.OTHER]
    return Scores(
        accuracy=sum(right) / len(right) if right else 0.0,
        triage_rate=sum(g == LegalField.OTHER for g in legal) / len(legal) if legal else 0.0,
        count=len(right),
        per_style={s: sum(v) / len(v) for s, v in sorted(styles.items())},
        per_field={f: sum(v) / len(v) for f, v in sorted(fields.items())},
        dispute=dispute_accuracy(examples, disputes) if disputes is not None else None,
    )


def dispute_accuracy(examples: Sequence[Example], disputes: Sequence[bool]) -> float | None:
    """Share of dispute-labelled examples read right."""
    pairs = [(e.is_dispute, d) for e, d in zip(examples, disputes, strict=True)]
    labelled = [truth == d for truth, d in pairs if truth is not None]
    return sum(labelled) / len(labelled) if labelled else None


def evaluate(classifier: Classifier, examples: Sequence[Example]) -> Scores:
    """The classifier's decided fields (triage as `other`) scored on labelled examples."""
    predictions = [classifier.predict(e.text) for e in examples]
    given = [decided(p, classifier.threshold) for p in predictions]
    disputes = [p.is_dispute for p in predictions] if classifier.dispute_coef is not None else None
    return score(examples, given, disputes)


def refusal(candidate: Scores, current: Scores | None) -> str | None:
    """Why a candidate may not replace the current model (worse overall on the blind set),
    or None when it may."""
    if current is not None and candidate.accuracy < current.accuracy:
        return (
            f"accuracy on the blind set would drop from {current.accuracy:.1%} "
            f"to {candidate.accuracy:.1%}"
        )
    return None
