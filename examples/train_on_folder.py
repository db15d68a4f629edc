"""Train an SPNN on a folder of images with an attributes.csv, then check its pseudo-inverse.

    python examples/train_on_folder.py          # writes a small generated folder and trains briefly
    python examples/train_on_folder.py --tiny   # seconds (the smoke test)
"""

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from spnn import SPNN, penrose_report
from spnn.data.real import ImageFolderCSV
from spnn.training.loop import LoopConfig
from spnn.training.spnn import SPNNTrainConfig, train_spnn


def make_folder(root: Path, n: int) -> None:
    """n 16x16 images: a red or blue square (attribute Red), top or bottom half (attribute Top)."""
    rng = np.random.default_rng(0)
    with open(root / "attributes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "Red", "Top"])
        for i in range(n):
            red, top = int(rng.integers(2)), int(rng.integers(2))
            img = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
            rows = slice(0, 8) if top else slice(8, 16)
            img[rows, 4:12] = (220, 30, 30) if red else (30, 30, 220)
            Image.fromarray(img).save(root / f"{i}.png")
            w.writerow([f"{i}.png", red, top])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    n, epochs = (80, 1) if args.tiny else (400, 5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        make_folder(root, n)
        train = ImageFolderCSV(root, split="train", size=16)
        val = ImageFolderCSV(root, split="val", size=16)
        net = SPNN.build(train.image_shape, (len(train.attribute_names),), hidden=16,
                         attribute_names=train.attribute_names)
        for phase in (1, 2):  # the paper's two phases: the task, then the natural pseudo-inverse (r only)
            cfg = SPNNTrainConfig(loop=LoopConfig(epochs=epochs, batch_size=16, lr=1e-3, warmup=5), phase=phase)
            metrics = train_spnn(net, train, val, cfg, Path(tmp) / "run", progress=False)
            print(f"phase {phase}: validation accuracy {metrics['val']['accuracy']:.3f}")
        x = val.tensors()[0]
        worst = max(v for k, v in penrose_report(net, x).items() if "mean_square" not in k)
        print(f"largest Penrose residual (float32): {worst:.1e}")


if __name__ == "__main__":
    main()
