"""Generates the synthetic training set, trains the plate recogniser, exports
it to ONNX and checks that ONNX Runtime gives the same outputs as PyTorch.

    python train.py --out models/plate-ocr --samples 120000 --minutes 45 --seed 1

Everything follows from the seed and the generator version; the run writes
`<out>/plate_ocr.onnx` and `<out>/plate_ocr.json` (how it was made and what
it scored on held-out synthetic plates).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import sys
import time

import numpy as np
import torch
from torch import nn

import model as model_mod
import synth

# Seeds of the validation plates: far from any training seed.
VALIDATION_SEED_BASE = 10_000_000_000


def _render_chunk(args: tuple[int, int, bool]) -> tuple[np.ndarray, list[str]]:
    start, count, held_out = args
    images = np.zeros((count, synth.HEIGHT, synth.WIDTH), dtype=np.uint8)
    labels = []
    for i in range(count):
        sample = synth.render(start + i, held_out_fonts=held_out)
        images[i] = np.asarray(sample.image, dtype=np.uint8)
        labels.append(sample.label)
    return images, labels


def generate(seed_base: int, count: int, workers: int, held_out: bool = False) -> tuple[np.ndarray, list[str]]:
    chunk = 2000
    jobs = [(seed_base + s, min(chunk, count - s), held_out) for s in range(0, count, chunk)]
    with multiprocessing.Pool(workers) as pool:
        parts = pool.map(_render_chunk, jobs)
    images = np.concatenate([p[0] for p in parts])
    labels = [label for p in parts for label in p[1]]
    return images, labels


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float().unsqueeze(1)
    return (x / 255.0 - 0.5) / 0.5


def encode(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    targets = [synth.ALPHABET.index(c) + 1 for label in labels for c in label]
    lengths = [len(label) for label in labels]
    return torch.tensor(targets, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


def accuracy(net: nn.Module, images: np.ndarray, labels: list[str]) -> float:
    net.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(labels), 512):
            reads = model_mod.decode(net(to_tensor(images[i : i + 512])))
            right += sum(r == t for r, t in zip(reads, labels[i : i + 512]))
    net.train()
    return right / max(1, len(labels))


def sha256_of(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def init_from_onnx(net: model_mod.PlateCRNN, path: str, calibration: torch.Tensor) -> None:
    """Loads the weights of an exported PlateCRNN (the committed model) to
    fine-tune it. The export folded each batch norm into its convolution, so
    the convolutions get the folded weights, and each batch norm is set to
    give back what its convolution gives on `calibration` plates: the mean
    and variance of its input there become both its running statistics and
    its scale and shift. The network then computes what the ONNX model
    computes, and the batch statistics of training start where they were."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    pairs = [(m, n) for m, n in zip(list(net.features)[:-1], list(net.features)[1:])
             if isinstance(m, nn.Conv2d) and isinstance(n, nn.BatchNorm2d)]
    blocks = [(b[0], b[1]) for b in net.features if isinstance(b, nn.Sequential)] + pairs
    if len(blocks) != len(convs):
        sys.exit(f"{path}: {len(convs)} convolutions, the model has {len(blocks)}")
    conv_bias = []
    for (conv, norm), node in zip(blocks, convs):
        w = weights[node.input[1]]
        if w.shape != conv.weight.shape:
            sys.exit(f"{path}: convolution {node.input[1]} is {list(w.shape)}, the model's {list(conv.weight.shape)}")
        conv.weight.data.copy_(w)
        # For now the batch norm only adds the folded bias (exact in eval mode).
        conv_bias.append(weights[node.input[2]])
        norm.weight.data.fill_(1.0)
        norm.bias.data.copy_(conv_bias[-1])
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0 - norm.eps)
    # ONNX LSTM gates are i, o, f, c; PyTorch's i, f, g (= c), o.
    lstm = next(node for node in graph.node if node.op_type == "LSTM")
    w_ih, w_hh, bias = (weights[name] for name in lstm.input[1:4])
    hidden = net.rnn.hidden_size

    def torch_order(t: torch.Tensor) -> torch.Tensor:
        i, o, f, c = t.split(hidden, 0)
        return torch.cat([i, f, c, o])

    for d, suffix in enumerate(["", "_reverse"]):
        getattr(net.rnn, f"weight_ih_l0{suffix}").data.copy_(torch_order(w_ih[d]))
        getattr(net.rnn, f"weight_hh_l0{suffix}").data.copy_(torch_order(w_hh[d]))
        getattr(net.rnn, f"bias_ih_l0{suffix}").data.copy_(torch_order(bias[d][: 4 * hidden]))
        getattr(net.rnn, f"bias_hh_l0{suffix}").data.copy_(torch_order(bias[d][4 * hidden:]))
    matmul = next(node for node in graph.node if node.op_type == "MatMul")
    add = next(node for node in graph.node if node.op_type == "Add" and matmul.output[0] in node.input)
    net.head.weight.data.copy_(weights[matmul.input[1]].t())
    net.head.bias.data.copy_(weights[next(i for i in add.input if i in weights)])

    # Each convolution's output statistics on the calibration plates.
    stats = []
    hooks = [conv.register_forward_hook(lambda _m, _i, out: stats.append(
        (out.mean((0, 2, 3)), out.var((0, 2, 3), unbiased=False)))) for conv, _ in blocks]
    net.eval()
    with torch.no_grad():
        net(calibration)
    for hook in hooks:
        hook.remove()
    for (_conv, norm), b, (mean, var) in zip(blocks, conv_bias, stats):
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
        norm.weight.data.copy_((var + norm.eps).sqrt())
        norm.bias.data.copy_(mean + b)

    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    probe = calibration[:64]
    with torch.no_grad():
        mine = net(probe).numpy()
    theirs = session.run(None, {"image": probe.numpy()})[0]
    diff = float(np.abs(mine - theirs).max())
    print(f"started from {path}: max |diff| against it {diff:.2e}", flush=True)
    if diff > 1e-3:
        sys.exit(f"{path}: the loaded weights do not reproduce it")
    net.train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--samples", type=int, default=120_000)
    parser.add_argument("--validation", type=int, default=4_000)
    parser.add_argument("--minutes", type=float, default=45.0, help="training time budget")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--init", help="an exported plate_ocr.onnx to fine-tune instead of starting afresh")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()

    seed_base = args.seed * 1_000_000_000
    print(f"generating {args.samples} training plates (generator {synth.GENERATOR_VERSION}, seed {args.seed})", flush=True)
    train_x, train_y = generate(seed_base, args.samples, args.threads)
    val_x, val_y = generate(VALIDATION_SEED_BASE, args.validation, args.threads)
    held_x, held_y = generate(VALIDATION_SEED_BASE + 5_000_000, args.validation // 2, args.threads, held_out=True)
    generated = time.time() - started
    print(f"generated in {generated:.0f} s", flush=True)

    net = model_mod.PlateCRNN()
    if args.init:
        init_from_onnx(net, args.init, to_tensor(train_x[:1024]))
    params = sum(p.numel() for p in net.parameters())
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    budget = args.minutes * 60
    train_started = time.time()
    step, seen, epoch = 0, 0, 0
    order = np.arange(len(train_y))
    rng = np.random.default_rng(args.seed)
    last_report = train_started
    while time.time() - train_started < budget:
        rng.shuffle(order)
        epoch += 1
        for i in range(0, len(order) - args.batch + 1, args.batch):
            elapsed = time.time() - train_started
            if elapsed >= budget:
                break
            # Cosine decay over the time budget, after a short warm-up.
            progress = elapsed / budget
            lr = args.lr * min(1.0, (step + 1) / 300) * 0.5 * (1 + math.cos(math.pi * progress))
            for group in optimiser.param_groups:
                group["lr"] = lr
            idx = order[i : i + args.batch]
            x = to_tensor(train_x[idx])
            # Cheap extra variety: random inversion of polarity.
            flip = torch.rand(x.shape[0]) < 0.1
            x[flip] = -x[flip]
            targets, lengths = encode([train_y[j] for j in idx])
            log_probs = net(x)
            steps = torch.full((x.shape[0],), log_probs.shape[1], dtype=torch.long)
            loss = ctc(log_probs.permute(1, 0, 2), targets, steps, lengths)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimiser.step()
            step += 1
            seen += len(idx)
            if time.time() - last_report > 120:
                last_report = time.time()
                print(f"  {elapsed / 60:5.1f} min  epoch {epoch}  step {step}  loss {loss.item():.3f}  lr {lr:.2e}  "
                      f"{seen / max(1e-9, elapsed):.0f} plates/s", flush=True)
    trained = time.time() - train_started
    val_acc = accuracy(net, val_x, val_y)
    held_acc = accuracy(net, held_x, held_y)
    print(f"trained {trained / 60:.1f} min, {seen} plates ({epoch} epochs); exact on synthetic validation "
          f"{val_acc:.3f}, with held-out fonts {held_acc:.3f}", flush=True)

    net.eval()
    # The weights as PyTorch has them, for fine-tuning later (not committed).
    torch.save(net.state_dict(), os.path.join(args.out, "plate_ocr.pt"))
    onnx_path = os.path.join(args.out, "plate_ocr.onnx")
    dummy = to_tensor(val_x[:8])
    torch.onnx.export(
        net, dummy, onnx_path, input_names=["image"], output_names=["log_probs"],
        dynamic_axes={"image": {0: "batch"}, "log_probs": {0: "batch"}}, opset_version=17,
        dynamo=False,
    )
    # ONNX Runtime must give what PyTorch gives.
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    probe = to_tensor(val_x[:256])
    with torch.no_grad():
        expected = net(probe).numpy()
    got = session.run(None, {"image": probe.numpy()})[0]
    max_diff = float(np.abs(expected - got).max())
    same_reads = model_mod.decode(torch.from_numpy(got)) == model_mod.decode(torch.from_numpy(expected))
    print(f"onnxruntime against torch: max |diff| {max_diff:.2e}, same reads: {same_reads}", flush=True)
    if max_diff > 1e-3 or not same_reads:
        sys.exit("ONNX export does not match PyTorch")

    info = {
        "model": "PlateCRNN",
        "parameters": params,
        "input": {"name": "image", "shape": [1, synth.HEIGHT, synth.WIDTH], "layout": "NCHW grayscale",
                  "normalise": "(x / 255 - 0.5) / 0.5", "resize": f"stretched to {synth.WIDTH} x {synth.HEIGHT} whatever the aspect ratio, bilinear"},
        "output": {"name": "log_probs", "classes": "0 = CTC blank, then " + synth.ALPHABET},
        "generator_version": synth.GENERATOR_VERSION,
        "seed": args.seed,
        "started_from": args.init,
        "started_from_sha256": sha256_of(args.init) if args.init else None,
        "training_plates": args.samples,
        "plates_seen": seen,
        "epochs": epoch,
        "minutes_training": round(trained / 60, 1),
        "seconds_generating": round(generated),
        "synthetic_validation_exact": round(val_acc, 4),
        "held_out_fonts_exact": round(held_acc, 4),
        "onnx_max_abs_diff": max_diff,
        "command": " ".join(sys.argv),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
    }
    with open(os.path.join(args.out, "plate_ocr.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
