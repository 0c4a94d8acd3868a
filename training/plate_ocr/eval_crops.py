"""Exact-match accuracy of the plate recogniser (ONNX) on real plate crops,
for evaluation only: ../shared/testdata/plate-crops-us is never trained on.

    python eval_crops.py models/plate-ocr/plate_ocr.onnx ../shared/testdata/plate-crops-us
"""

from __future__ import annotations

import collections
import csv
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

import synth


def greedy(log_probs: np.ndarray) -> str:
    best = log_probs.argmax(-1)
    out, last = [], 0
    for c in best:
        if c != last and c != 0:
            out.append(synth.ALPHABET[c - 1])
        last = c
    return "".join(out)


def main() -> None:
    model, folder = sys.argv[1], sys.argv[2]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    rows = list(csv.reader(open(os.path.join(folder, "groundtruth.csv"))))
    right, times = 0, []
    confusions = collections.Counter()
    for name, _state, plate in rows:
        img = synth.to_input(Image.open(os.path.join(folder, name)).convert("RGB"))
        x = ((np.asarray(img, dtype=np.float32) / 255.0 - 0.5) / 0.5)[None, None]
        started = time.perf_counter()
        out = session.run(None, {"image": x})[0][0]
        times.append(time.perf_counter() - started)
        read = greedy(out)
        if read == plate:
            right += 1
        elif len(read) == len(plate):
            for a, b in zip(plate, read):
                if a != b:
                    confusions[f"{a}->{b}"] += 1
        else:
            confusions["length"] += 1
    times.sort()
    print(f"plate-crops-us: {right}/{len(rows)} exact ({100 * right / len(rows):.1f} %), "
          f"median {1000 * times[len(times) // 2]:.2f} ms per crop (1 thread)")
    print("most common errors:", ", ".join(f"{k} {v}" for k, v in confusions.most_common(12)))


if __name__ == "__main__":
    main()
