"""An MNIST autoencoder with and without an adversarial term on its reconstructions (`gankit.AdversarialLoss`).

Both settings train the same encoder and decoder from the same seed on the same batches for the same number of
steps; the adversarial one adds ``--adv-weight * adv.g_term(x_hat)`` to the L1 reconstruction loss, with a
spectrally normalised DCGAN discriminator learning to tell reconstructions from the images they reconstruct.
The reconstructions of the test split are then measured with gankit's MNIST domain classifier:

- accuracy: the classifier's class for a reconstruction equals the original's label;
- confidence: the classifier's mean top softmax probability on the reconstructions;
- FID of the reconstructions against the test images (gankit's MNIST features, 95% bootstrap interval);
- L1 error, and sharpness: the mean absolute Laplacian of the images (the originals' is printed alongside).

    OMP_NUM_THREADS=2 python examples/adversarial_autoencoder.py --data-dir ../shared/data/mnist --out runs/aae

writes ``OUT/results.json``, ``OUT/results.md`` and ``OUT/reconstructions.png`` (rows: test images, plain
autoencoder, adversarial autoencoder). ``--dataset digits`` (scikit-learn's digits, no download) and
``--steps`` make a quick trial; ``--no-eval`` skips the classifier and FID.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import gankit
from gankit.data import load_dataset, to_float
from gankit.errors import GankitError
from gankit.nets import DCGANDiscriminator


class Encoder(nn.Module):
    def __init__(self, code_dim: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),               # width x 14 x 14
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),  # 2w x 7 x 7
            nn.Flatten(), nn.Linear(2 * width * 49, code_dim))

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, code_dim: int, width: int = 32):
        super().__init__()
        self.width = width
        self.fc = nn.Sequential(nn.Linear(code_dim, 2 * width * 49), nn.ReLU())
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * width),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),  # w x 14 x 14
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())                                # 1 x 28 x 28

    def forward(self, code):
        return self.net(self.fc(code).view(-1, 2 * self.width, 7, 7))


def train(data, args, adv_weight: float) -> nn.Module:
    """The autoencoder (encoder, decoder) after ``args.steps`` steps; D only when ``adv_weight`` > 0."""
    torch.manual_seed(args.seed)
    enc, dec = Encoder(args.code_dim), Decoder(args.code_dim)
    D = DCGANDiscriminator((1, 28, 28), width=32, norm="spectral")  # built in both settings: same RNG stream
    ae_params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(ae_params, lr=1e-3, betas=(0.5, 0.999))
    adv = gankit.AdversarialLoss(args.objective, D, torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999)))
    order = torch.Generator().manual_seed(args.seed)
    n, step, start = len(data), 0, time.perf_counter()
    while step < args.steps:
        for idx in torch.randperm(n, generator=order).split(args.batch_size):
            if step >= args.steps or len(idx) < 2:
                break
            x = to_float(data.x[idx])  # uint8 in memory, float in [-1, 1] per batch
            x_hat = dec(enc(x))
            loss = F.l1_loss(x_hat, x)
            if adv_weight > 0:
                adv.d_step(x, x_hat)
                loss = loss + adv_weight * adv.g_term(x_hat)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % args.log_every == 0 or step == args.steps:
                extra = (f", D(real) {adv.last['d_real']:.3f}, D(recon) {adv.last['d_fake']:.3f}"
                         if adv_weight > 0 else "")
                print(f"  adv_weight={adv_weight}: step {step}/{args.steps}, L1 {F.l1_loss(x_hat, x).item():.4f}"
                      f"{extra} ({time.perf_counter() - start:.0f} s)", flush=True)
    return nn.Sequential(enc, dec).eval()


@torch.no_grad()
def reconstruct(ae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([ae(b) for b in x.split(500)])


def sharpness(x: torch.Tensor) -> float:
    """Mean absolute 3x3 Laplacian of images in [-1, 1]: blur lowers it."""
    kernel = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]]).view(1, 1, 3, 3)
    return float(F.conv2d(x.float(), kernel).abs().mean())


def measure(name: str, recon: torch.Tensor, test, args) -> dict:
    row = {"setting": name, "l1": float((recon - test.x).abs().mean()), "sharpness": sharpness(recon)}
    if args.no_eval:
        return row
    from gankit.export import to_uint8
    from gankit.metrics.classifier import load_classifier, predict_logits
    from gankit.metrics.evaluate import evaluate_images

    classifier, _ = load_classifier(args.dataset, args.data_dir, progress=False)
    p = predict_logits(classifier, recon).softmax(1)
    row["accuracy"] = float((p.argmax(1) == test.y).float().mean())
    row["confidence"] = float(p.max(1).values.mean())
    result = evaluate_images(to_uint8(recon), args.dataset, args.data_dir, args.seed, ("fid",), floor=False)
    row.update(fid=result["fid"], fid_ci=[result["fid_ci_low"], result["fid_ci_high"]])
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist", help="mnist (default) or digits (bundled, for a quick trial)")
    parser.add_argument("--data-dir", help="folder with the four MNIST *-ubyte.gz files")
    parser.add_argument("--out", default="runs/adversarial-autoencoder", help="folder for the results")
    parser.add_argument("--steps", type=int, default=1880, help="training steps per setting (default 1880: 2 epochs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--code-dim", type=int, default=8, help="bottleneck size (small: blurry reconstructions)")
    parser.add_argument("--adv-weight", type=float, default=0.01, help="weight of the adversarial term")
    parser.add_argument("--objective", default="non-saturating", help="a gankit objective name")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    parser.add_argument("--eval-n", type=int, default=10000, help="test images reconstructed and measured")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=200)
    parser.add_argument("--no-eval", action="store_true", help="skip the classifier and FID (L1 and sharpness only)")
    args = parser.parse_args(argv)
    try:
        if args.steps < 1 or args.batch_size < 2 or args.code_dim < 1 or args.eval_n < 10 or args.adv_weight <= 0:
            raise GankitError("--steps >= 1, --batch-size >= 2, --code-dim >= 1, --eval-n >= 10 and --adv-weight > 0 "
                              "are required")
        data = load_dataset(args.dataset, args.data_dir, "train", limit=args.limit or None)
        test = load_dataset(args.dataset, args.data_dir, "test", limit=args.eval_n)
        test.x = to_float(test.x)
        if data.image_shape != (1, 28, 28):
            raise GankitError(f"the example's networks take 1x28x28 images; {args.dataset} has {data.image_shape}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        rows, recons = [], {}
        for name, weight in (("autoencoder", 0.0), (f"+ adversarial term (weight {args.adv_weight})", args.adv_weight)):
            start = time.perf_counter()
            ae = train(data, args, weight)
            recons[name] = reconstruct(ae, test.x)
            seconds = round(time.perf_counter() - start, 1)
            rows.append({**measure(name, recons[name], test, args), "train_seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)
    except GankitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from torchvision.utils import save_image

    shown = [test.x[:16], *(r[:16] for r in recons.values())]
    save_image(torch.cat(shown).add(1).div(2), out / "reconstructions.png", nrow=16, padding=2)
    shown_args = sys.argv[1:] if argv is None else argv
    record = {"command": "python examples/adversarial_autoencoder.py " + " ".join(shown_args),
              "dataset": args.dataset, "train_images": len(data), "test_images": len(test), "steps": args.steps,
              "batch_size": args.batch_size, "code_dim": args.code_dim, "adv_weight": args.adv_weight,
              "objective": args.objective, "seed": args.seed, "original_sharpness": sharpness(test.x), "results": rows}
    (out / "results.json").write_text(json.dumps(record, indent=1))
    lines = ["| setting | L1 | sharpness | classifier accuracy | confidence | FID [95% interval] | train s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        fid = f"{r['fid']:.2f} [{r['fid_ci'][0]:.2f}, {r['fid_ci'][1]:.2f}]" if "fid" in r else "-"
        acc = f"{r['accuracy']:.4f}" if "accuracy" in r else "-"
        conf = f"{r['confidence']:.4f}" if "confidence" in r else "-"
        lines.append(f"| {r['setting']} | {r['l1']:.4f} | {r['sharpness']:.4f} | {acc} | {conf} | {fid} | "
                     f"{r['train_seconds']} |")
    lines.append(f"| test images themselves | 0 | {record['original_sharpness']:.4f} | | | | |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
