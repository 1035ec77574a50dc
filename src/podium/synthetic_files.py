"""Seed 002's shapes written as a Kaggle-style competition folder, so demos and the RLE path see files.

train/<id>.png, train_ship_segmentations.csv (Airbus: ImageId, EncodedPixels, one row per object,
one empty row for an image without) and train_boxes.csv (ImageId, label, x1, y1, x2, y2 in pixels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from podium.io import write_csv
from podium.rle import submission_frame
from podium.synthetic import ShapeSet


def write_shapes(shapes: ShapeSet, out_dir: str | Path, prefix: str = "shape") -> Path:
    from PIL import Image

    out = Path(out_dir)
    (out / "train").mkdir(parents=True, exist_ok=True)
    ids = [f"{prefix}-{i:06d}.png" for i in range(len(shapes))]
    for image_id, image in zip(ids, shapes.images):
        Image.fromarray(image).save(out / "train" / image_id)
    write_csv(out / "train_ship_segmentations.csv", submission_frame(ids, shapes.masks))
    size = shapes.images.shape[1]
    boxes = pd.DataFrame(np.rint(shapes.boxes * size).astype(int), columns=["x1", "y1", "x2", "y2"])
    boxes.insert(0, "label", np.where(shapes.bright == 1, "bright", "dark"))
    boxes.insert(0, "ImageId", ids)
    write_csv(out / "train_boxes.csv", boxes)
    return out
