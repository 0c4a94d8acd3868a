"""The plate recogniser: a small CRNN read out with CTC.

Input: 1 x 48 x 128 grayscale (the crop stretched to fill it), values
(x / 255 - 0.5) / 0.5. Output: 32 time steps x 37 classes (0 = CTC blank,
1..36 = "0-9A-Z"), log-probabilities. Four time steps per 16-pixel column of
the input: a whole plate's seven characters get about four steps each.
"""

from __future__ import annotations

import torch
from torch import nn

from synth import ALPHABET, HEIGHT

CLASSES = len(ALPHABET) + 1  # + CTC blank at 0


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class PlateCRNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            # A strided first convolution: full-resolution layers cost most of
            # the CPU time on memory traffic, not on arithmetic.
            _block(1, 32, stride=2),                   # 24 x 64
            _block(32, 48), nn.MaxPool2d(2),           # 12 x 32
            _block(48, 96), _block(96, 96), nn.MaxPool2d((2, 1)),    # 6 x 32
            _block(96, 128), _block(128, 128), nn.MaxPool2d((2, 1)),  # 3 x 32
            nn.Conv2d(128, 192, (HEIGHT // 16, 1), bias=False), nn.BatchNorm2d(192), nn.ReLU(inplace=True),  # 1 x 32
        )
        self.rnn = nn.LSTM(192, 96, num_layers=1, bidirectional=True, batch_first=True)
        self.head = nn.Linear(192, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # N x C x 1 x T
        f = f.squeeze(2).permute(0, 2, 1)  # N x T x C
        f, _ = self.rnn(f)
        return self.head(f).log_softmax(-1)  # N x T x classes


def decode(log_probs: torch.Tensor) -> list[str]:
    """Greedy CTC: best class per step, repeats merged, blanks dropped."""
    best = log_probs.argmax(-1).tolist()
    out = []
    for seq in best:
        text, last = [], 0
        for c in seq:
            if c != last and c != 0:
                text.append(ALPHABET[c - 1])
            last = c
        out.append("".join(text))
    return out
