"""Checkers for the book's code exercises: instant feedback in JupyterLab, Colab and the book.

    from vae_course import exercises
    exercises.check("kl-closed-form", my_kl)     # shows: correct, or what is wrong and a hint

Each checker runs the reader's function (or model) on fixed inputs, compares with the
reference solution, and when the answer is wrong, tries the typical mistakes for that exercise
(wrong sign, missing sum over dimensions, off by log 2 pi, ...) to say which one it looks like.
Checkers need no GPU and no network, and never train for more than a few seconds.
``exercises.available()`` lists them by chapter.

The checkers of each chapter live in a module of this package named after the chapter; they
register themselves with :func:`checker`.
"""

from __future__ import annotations

import importlib
import textwrap
from dataclasses import dataclass, field

CHAPTERS = ("autoencoders", "pca", "elbo", "reparameterization", "training", "conv_vae",
            "conditional_vae", "iaf")

_CHECKERS: dict = {}

# the shown text (str, repr, print) of a Feedback fits the book's code column
WIDTH, INDENT = 88, 4


@dataclass
class Feedback:
    """What a checker says: ``ok`` and a message (plus a hint when the answer is wrong)."""

    exercise: str
    ok: bool
    message: str
    hint: str = ""
    details: dict = field(default_factory=dict)

    def __bool__(self):
        return self.ok

    def __str__(self):
        mark = "correct" if self.ok else "not yet"
        text = _wrap(f"[{self.exercise}] {mark}: {self.message}")
        return text + (f"\n{_wrap(f'Hint: {self.hint}')}" if self.hint else "")

    def _repr_markdown_(self):
        icon = "✅" if self.ok else "❌"
        text = f"{icon} **{self.exercise}** — {self.message}"
        return text + (f"\n\n*Hint:* {self.hint}" if self.hint else "")

    __repr__ = __str__


def _wrap(text: str) -> str:
    """``text`` wrapped at WIDTH characters, continuation lines indented by INDENT spaces.

    Line breaks already in ``text`` are kept; words (and hyphenated terms such as
    ``log-likelihood``) are never split.
    """
    return "\n".join(
        textwrap.fill(line, width=WIDTH, subsequent_indent=" " * INDENT,
                      break_long_words=False, break_on_hyphens=False)
        for line in text.split("\n"))


def checker(name: str, chapter: str, summary: str):
    """Register ``function(answer) -> Feedback`` as the checker of exercise ``name``."""
    if chapter not in CHAPTERS:
        raise ValueError(f"Expected chapter in {CHAPTERS}. Received: {chapter!r}")

    def register(function):
        _CHECKERS[name] = (chapter, summary, function)
        return function

    return register


def _load_all():
    for chapter in CHAPTERS:
        try:
            importlib.import_module(f".{chapter}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{chapter}":
                raise


def available() -> dict:
    """{chapter: [(exercise name, what it checks)]} of every checker."""
    _load_all()
    out: dict = {}
    for name, (chapter, summary, _) in _CHECKERS.items():
        out.setdefault(chapter, []).append((name, summary))
    return out


def check(name: str, answer) -> Feedback:
    """Check the reader's ``answer`` to exercise ``name``; returns (and shows) the feedback.

    A checker that itself fails on the answer (an exception inside the reader's code) reports
    the exception as the feedback instead of raising, so a notebook cell shows what happened.
    """
    _load_all()
    if name not in _CHECKERS:
        known = ", ".join(sorted(_CHECKERS))
        raise ValueError(f"Unknown exercise {name!r}. Known exercises: {known}.")
    function = _CHECKERS[name][2]
    try:
        return function(answer)
    except Exception as err:   # the reader's code raised: say so, with the error
        return Feedback(name, False, f"your answer raised {type(err).__name__}: {err}",
                        hint="Run it on a small input first and look at the shapes.")


# -- helpers for the chapter modules -----------------------------------------------------
def compare(name, got, expected, wrong=(), rtol=1e-4, atol=1e-5, what="the result"):
    """Feedback for a numeric answer ``got`` against ``expected``.

    ``wrong``: (value, hint) pairs for typical mistakes; the first one ``got`` matches gives
    the hint. Shapes are checked first.
    """
    import numpy as np

    got = np.asarray(got, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    if got.shape != expected.shape:
        for value, hint in wrong:
            value = np.asarray(value, dtype="float64")
            if value.shape == got.shape and np.allclose(got, value, rtol=rtol, atol=atol):
                return Feedback(name, False, f"{what} has shape {got.shape}, expected "
                                             f"{expected.shape}.", hint)
        return Feedback(name, False, f"{what} has shape {got.shape}, expected {expected.shape}.",
                        "Check which axes you sum over: one value per example is expected.")
    if not np.all(np.isfinite(got)):
        return Feedback(name, False, f"{what} contains NaN or infinite values.",
                        "Look for a log of zero or a division by zero.")
    if np.allclose(got, expected, rtol=rtol, atol=atol):
        return Feedback(name, True, f"{what} matches the reference on every test input.")
    for value, hint in wrong:
        value = np.asarray(value, dtype="float64")
        if value.shape == got.shape and np.allclose(got, value, rtol=rtol, atol=atol):
            return Feedback(name, False, f"{what} differs from the reference.", hint)
    worst = float(np.max(np.abs(got - expected)))
    return Feedback(name, False, f"{what} differs from the reference by up to {worst:.3g}.",
                    "Compare with the formula in the chapter term by term on one example.",
                    details={"max_abs_error": worst})
