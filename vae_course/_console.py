"""What the command line adds around the package: TensorFlow's start-up lines kept out of its
output, and a progress bar with the time left for ``evaluate`` (both on stderr; stdout carries
only the results)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time

# TensorFlow's C++ start-up lines: absl's INFO/WARNING lines written before absl is set up
# (TF_CPP_MIN_LOG_LEVEL does not reach them), the CPU-feature notice, and on a machine with no
# GPU the failed CUDA probe. Anything else TensorFlow prints while starting is passed on.
# Two formats: absl's (TensorFlow 2.19 and later) and the older "date time: I path.cc:N]".
_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                    r"|[IW]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\]"
                    r"|\d{4}-\d\d-\d\d [\d:.]+: [IW] \S+\.cc:\d+\]"
                    r"|(E\d{4} [\d:. ]+\d+|\d{4}-\d\d-\d\d [\d:.]+: E) \S*cuda\w*\.cc:\d+\] "
                    r"failed call to cuInit"
                    r"|To enable the following instructions:.*rebuild TensorFlow")


def quiet_tensorflow_import():
    """Import TensorFlow and look up its devices with stderr captured at the file-descriptor
    level (the C++ logs bypass ``sys.stderr``), then pass on every line that is not start-up
    noise. A failed import shows everything it printed. Does nothing under another Keras
    backend or without TensorFlow installed."""
    import importlib.util

    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" \
            or "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        failed = True
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()   # the CUDA probe logs here, not on import
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            text = log.read().decode(errors="replace")
            lines = text.splitlines(keepends=True)
            sys.stderr.write(text if failed else "".join(
                line for line in lines if not _NOISE.match(line)))
            sys.stderr.flush()


class _Counted:
    """A variational model whose ``log_weights`` calls report how many decodes they made;
    everything else is the model's own, so the scores are exactly ``metrics.evaluate``'s."""

    def __init__(self, model, report):
        self._model, self._report = model, report

    def __getattr__(self, name):
        return getattr(self._model, name)

    def log_weights(self, x, k, **kwargs):
        from . import data

        out = self._model.log_weights(x, k, **kwargs)
        self._report(data.count(x) * k)
        return out


class Progress:
    """Images scored out of ``total``, with the time left, on stderr: a Keras progress bar on
    a terminal, otherwise a line every tenth of the way. After ``warn_after`` seconds' worth
    of the first measurements, a run projected to take longer than ``long_seconds`` says so
    and how to make it shorter."""

    def __init__(self, total, k, stream=None, long_seconds=120.0):
        self.total, self.k = total, k
        self.stream = stream or sys.stderr
        self.long_seconds = long_seconds
        self.decodes = 0
        self.start = time.perf_counter()
        self.warned = False
        self.next_tenth = 1   # the next line is written at this many tenths of the way
        self.bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from keras.utils import Progbar

            self.bar = Progbar(total, unit_name="image")

    def __call__(self, decodes):
        self.decodes += decodes
        done = self.decodes / self.k                   # images with all K samples
        elapsed = time.perf_counter() - self.start
        left = elapsed * (self.total - done) / done if done else float("inf")
        if not self.warned and done < self.total and elapsed + left > self.long_seconds:
            self.warned = True
            self._write(f"note: at this rate the importance-sampled bound of {self.total} "
                        f"images with K={self.k} takes about {_minutes(elapsed + left)}; "
                        f"--examples N (the first N images) or a smaller --k give a quicker "
                        f"estimate.\n")
        if self.bar is not None:
            with contextlib.redirect_stdout(self.stream):
                self.bar.update(min(int(done), self.total))
        elif 10 * done >= self.next_tenth * self.total:
            while 10 * done >= self.next_tenth * self.total:
                self.next_tenth += 1
            when = "done" if done >= self.total else f"about {_minutes(left)} left"
            self._write(f"importance sampling: {int(done)}/{self.total} images, "
                        f"{_minutes(elapsed)} so far, {when}\n")

    def _write(self, text):
        if self.bar is not None:
            text = "\n" + text
        self.stream.write(text)
        self.stream.flush()


def _minutes(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def evaluate_with_progress(model, config, k=1000, examples=None, stream=None):
    """``metrics.evaluate`` with progress on ``stream`` (stderr): the same calls in the same
    order, so the same numbers."""
    import numpy as np

    from . import data, losses, metrics

    scored, x, what = metrics.test_set(model, config, examples)
    n = data.count(x)
    stream = stream or sys.stderr
    stream.write(f"scoring {n} test images: the ELBO, then the importance-sampled bound with "
                 f"K={k} ({n * k:,} decodes)\n")
    stream.flush()
    elbo_mean = float(np.mean(metrics.elbo(scored, x)))
    progress = Progress(n, k, stream)
    nll_mean = float(-np.mean(metrics.log_likelihood(_Counted(scored, progress), x, k=k)))
    result = {"images": n, "what": what, "k": k, "test_elbo": elbo_mean, "is_nll": nll_mean}
    if config.dataset == "cifar10":
        dims = data.dims("cifar10")
        result.update(test_bpd=float(losses.bits_per_dim(-elbo_mean, dims)),
                      is_bpd=float(losses.bits_per_dim(nll_mean, dims)))
    return result
