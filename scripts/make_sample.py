"""Build the bundled sample (seglab/assets/pet_sample) from an Oxford-IIIT Pet copy in its official layout.

Usage: python scripts/make_sample.py ../shared/data/oxford-iiit-pet-subset
Takes the first N trainval and M test images of each breed, downscales them to a max side of 256
(JPEG quality 90; trimaps with nearest neighbour) and writes the official layout with filtered lists.
"""

import sys
from pathlib import Path

from PIL import Image

TRAIN_PER_BREED, TEST_PER_BREED, MAX_SIDE = 16, 4, 256
OUT = Path(__file__).resolve().parents[1] / "seglab" / "assets" / "pet_sample"


def pick(lines: list[str], per_breed: int) -> list[str]:
    chosen, counts = [], {}
    for line in lines:
        breed = line.split()[0].rsplit("_", 1)[0]
        if counts.get(breed, 0) < per_breed:
            counts[breed] = counts.get(breed, 0) + 1
            chosen.append(line)
    return chosen


def shrink(image: Image.Image, resample) -> Image.Image:
    scale = MAX_SIDE / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), resample) if scale < 1 else image


def main(src: Path) -> None:
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    (OUT / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
    for split, per_breed in (("trainval", TRAIN_PER_BREED), ("test", TEST_PER_BREED)):
        lines = [l for l in (src / "annotations" / f"{split}.txt").read_text().splitlines() if l and not l.startswith("#")]
        chosen = pick(lines, per_breed)
        for line in chosen:
            name = line.split()[0]
            image = Image.open(src / "images" / f"{name}.jpg").convert("RGB")
            shrink(image, Image.LANCZOS).save(OUT / "images" / f"{name}.jpg", quality=90)
            trimap = Image.open(src / "annotations" / "trimaps" / f"{name}.png")
            shrink(trimap, Image.NEAREST).save(OUT / "annotations" / "trimaps" / f"{name}.png")
        (OUT / "annotations" / f"{split}.txt").write_text("\n".join(chosen) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
