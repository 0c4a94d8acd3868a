"""Exact-match accuracy of the plate recogniser (ONNX) on real plate crops,
for evaluation only: ../shared/testdata/plate-crops-us is never trained on.

    python eval_crops.py models/plate-ocr/plate_ocr.onnx ../shared/testdata/plate-crops-us

Reports the model on each crop as cut (its errors by character) and as the
Rust recognizer reads it, the most confident of several views of the crop.
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


def decode(log_probs: np.ndarray) -> tuple[str, float]:
    """Greedy read and its confidence as the Rust recognizer scores it: the
    mean over characters of the probability where each character starts."""
    probs = np.exp(log_probs)
    best = probs.argmax(-1)
    chars, last = [], 0
    for t, c in enumerate(best):
        if c != last and c != 0:
            chars.append((synth.ALPHABET[c - 1], float(probs[t, c])))
        last = c
    confidence = sum(p for _, p in chars) / len(chars) if chars else 0.0
    return "".join(c for c, _ in chars), confidence


def views(img: Image.Image) -> list[Image.Image]:
    """The crop as cut, its middle band, narrowed, and with a margin in its
    corner colour: the framings services/recognizer/src/plate_ocr.rs reads."""
    w, h = img.size
    band, narrow = h * 12 // 100, w * 4 // 100
    pad_x, pad_y = w * 5 // 100, h * 8 // 100
    padded = Image.new("RGB", (w + 2 * pad_x, h + 2 * pad_y), img.getpixel((0, 0)))
    padded.paste(img, (pad_x, pad_y))
    return [img, img.crop((0, band, w, h - band)), img.crop((narrow, 0, w - narrow, h)), padded]


def main() -> None:
    model, folder = sys.argv[1], sys.argv[2]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    rows = list(csv.reader(open(os.path.join(folder, "groundtruth.csv"))))
    right, right_views, times = 0, 0, []
    confusions = collections.Counter()
    for name, _state, plate in rows:
        reads = []
        for view in views(Image.open(os.path.join(folder, name)).convert("RGB")):
            x = ((np.asarray(synth.to_input(view), dtype=np.float32) / 255.0 - 0.5) / 0.5)[None, None]
            started = time.perf_counter()
            out = session.run(None, {"image": x})[0][0]
            times.append(time.perf_counter() - started)
            reads.append(decode(out))
        read = reads[0][0]
        # The most confident view; the crop as cut wins ties.
        right_views += max(reads, key=lambda r: r[1])[0] == plate
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
    print(f"plate-crops-us, most confident of {len(views(Image.new('RGB', (8, 8))))} views as the recognizer "
          f"reads: {right_views}/{len(rows)} exact ({100 * right_views / len(rows):.1f} %)")
    print("most common errors:", ", ".join(f"{k} {v}" for k, v in confusions.most_common(12)))


if __name__ == "__main__":
    main()
