"""Wall time and memory of the importance-sampled log-likelihood (K samples per test image).

``metrics.log_likelihood`` decodes every test image K times, in chunks of at most
``max_decode`` images, keeping a running log-sum-exp: memory is bounded by the chunk, not by
K or the number of images. This script scores pretrained models on the statically or
dynamically binarized MNIST test set (as each was trained), prints the estimate, the wall
time, the decoder images/s and the process's peak resident memory.

Usage: ``python benchmarks/importance_sampling.py [--models mnist-mlp-latent32 mnist-conv-latent2]
[--k 1000] [--examples N]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from _table import print_table  # noqa: E402
from vae_course import data, metrics, pretrained  # noqa: E402


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["mnist-mlp-latent32", "mnist-conv-latent2"])
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--examples", type=int, default=None, help="first N test images (all)")
    args = p.parse_args(argv)
    (_, _), (x_u8, _) = data.load_mnist()
    x_u8 = x_u8[:args.examples]
    rows = []
    for name in args.models:
        info = pretrained.info(name)
        model = pretrained.load(name)
        # the test set as the model's own log-likelihood figure was computed
        x = data.binarize(x_u8, info.get("config", {}).get("binarization", "static"))
        before = peak_rss_mib()
        start = time.perf_counter()
        ll = metrics.log_likelihood(model, x, k=args.k)
        seconds = time.perf_counter() - start
        rows.append((name, len(x), float(np.mean(ll)), seconds, len(x) * args.k / seconds,
                     peak_rss_mib(), peak_rss_mib() - before))
        print(f"  {name}: IS-NLL {-rows[-1][2]:.2f} nats on {len(x)} images, K={args.k}, "
              f"{seconds:.0f} s", flush=True)
    header = ("model", "images", f"IS-NLL (K={args.k})", "wall time", "decodes/s",
              "peak RSS", "growth")
    print_table(header, [(r[0], f"{r[1]:,}", f"{-r[2]:.2f}", f"{r[3]:.0f} s", f"{r[4]:,.0f}",
                          f"{r[5]:,.0f} MiB", f"{r[6]:,.0f} MiB") for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
