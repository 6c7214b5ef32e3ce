"""What fixed, label-free renderings score on the two `digits2mnist-cyclegan` targets (docs/cyclegan.md).

    python benchmarks/cyclegan_bounds.py --data-dir ../shared/data/mnist

Digits into MNIST: all 1,797 scikit-learn digits, upscaled as the `digits` dataset does, then sharpened
(sigmoid((x - t) * k), a hand-made local "translator"), scored as `gankit evaluate --direction a2b` scores a
run: FID on gankit's MNIST classifier features against the MNIST test split, and the MNIST classifier's label
agreement. MNIST into digits: the 10,000 MNIST test digits rendered the way the UCI scans were made (each
digit's bounding box scaled to 32x32, 4x4 blocks averaged to 8x8; the box stretched to fill, or padded to a
square first), then upscaled and framed as the `digits` dataset does, scored with gankit's digits classifier.
Results: benchmarks/results/cyclegan_bounds.json.
"""
from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

import gankit
from gankit.data import load_arrays, to_float
from gankit.data._sources import upscale_digits
from gankit.metrics.classifier import load_classifier

from _common import RESULTS


def _uci(image: torch.Tensor, stretch: bool) -> torch.Tensor:
    rows, cols = (image[0] > 0.1).nonzero().unbind(1)
    crop = image[:, int(rows.min()):int(rows.max()) + 1, int(cols.min()):int(cols.max()) + 1]
    if not stretch:
        h, w = crop.shape[1:]
        s = max(h, w)
        crop = F.pad(crop, ((s - w) // 2, s - w - (s - w) // 2, (s - h) // 2, s - h - (s - h) // 2))
    box = F.interpolate(crop[None], size=(32, 32), mode="bilinear", align_corners=False)
    return F.avg_pool2d(box, 4)[0]


def _score(name: str, x: torch.Tensor, y: torch.Tensor, dataset: str, data_dir) -> dict:
    u8 = (x.clamp(0, 1)[:, 0] * 255).round().to(torch.uint8)
    fid = gankit.evaluate(u8.numpy(), dataset, metrics=("fid",), data_dir=data_dir, n_boot=0)["fid"]
    model, _ = load_classifier(dataset, data_dir, progress=False)
    with torch.no_grad():
        pred = torch.cat([model(b).argmax(1) for b in to_float(u8[:, None]).split(1000)])
    row = {"rendering": name, "target": dataset, "images": len(x), "fid": round(fid, 1),
           "label_agreement": round(float((pred == y).float().mean()), 4)}
    print(f"{name:<44} -> {dataset:<6} FID {row['fid']:>7.1f}  label agreement {row['label_agreement']:.4f}")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="MNIST's IDX files")
    args = ap.parse_args()
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x8, y = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0, torch.tensor(bunch.target)
    up = upscale_digits(x8)
    rows = [_score("digits as the dataset has them", up, y, "mnist", args.data_dir)]
    inside = F.pad(torch.ones(1, 1, 20, 20), (4, 4, 4, 4)).bool()  # the 20x20 box: the frame stays black
    for t, k in ((0.35, 12), (0.5, 12), (0.65, 12)):
        rows.append(_score(f"digits sharpened (t={t}, k={k})", torch.sigmoid((up - t) * k) * inside, y, "mnist",
                           args.data_dir))
    xm, ym = load_arrays("mnist", args.data_dir, split="test")
    xm, ym = torch.tensor(xm, dtype=torch.float32)[:, None] / 255, torch.tensor(ym)
    rows.append(_score("MNIST test as it is", xm, ym, "digits", None))
    for stretch in (True, False):
        uci = torch.stack([_uci(im, stretch) for im in xm])
        rows.append(_score(f"MNIST test rendered as UCI ({'stretched' if stretch else 'aspect kept'})",
                           upscale_digits(uci), ym, "digits", None))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cyclegan_bounds.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
