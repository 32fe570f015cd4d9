"""Write the example inputs shipped in ``demos/examples/`` (deterministic; run once).

    python -m zoo.demos.make_examples

Digits come from scikit-learn's digits (the last rows, outside the usual training
split), drawn the way users upload them: scaled up, light-on-dark and dark-on-light,
off centre. The shapes image is a plain scene for detectors; the edge list is a small
two-community graph for node classifiers.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).with_name("examples")

#: (file, row of load_digits, style)
DIGITS = (("digit_0.png", -4, "light"), ("digit_7.png", -12, "dark"),
          ("digit_2.png", -17, "dark-offset"), ("digit_5.png", -13, "light"))


def digit_image(row: int, style: str):
    """One 8x8 digit as a user-sized PIL image in the given style."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    a = (d.images[row] / 16.0 * 255).astype(np.uint8)
    img = Image.fromarray(a, mode="L").resize((96, 96), Image.BILINEAR)
    if style.startswith("dark"):
        img = Image.fromarray(255 - np.asarray(img))
    if style.endswith("offset"):
        canvas = Image.new("L", (160, 128), 255)
        canvas.paste(img, (50, 10))
        img = canvas
    return img, int(d.target[row])


def shapes_image(scale: int = 4):
    """A circle, a square and a triangle on grey noise, drawn by the detection family's
    generator (:mod:`zoo.plugins.cnn.shapes`, 64 px) and scaled up ``scale`` times.

    Returns ``(PIL image, boxes xyxy in its pixels, class names)``.
    """
    import numpy as np
    from PIL import Image

    from zoo.plugins.cnn.shapes import CLASSES, render_shapes

    img, boxes, labels = render_shapes(np.random.default_rng(4), 64, min_objects=3,
                                       max_objects=3)
    big = Image.fromarray(img).resize((64 * scale, 64 * scale), Image.NEAREST)
    return (big, [[round(v * scale) for v in b] for b in boxes.tolist()],
            [CLASSES[i] for i in labels.tolist()])


EDGES = """# Two five-node communities joined by one edge (0-based node ids, one edge a line)
0 1
0 2
0 3
1 2
1 4
2 3
3 4
5 6
5 7
6 7
6 8
7 9
8 9
5 9
4 5
"""


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, row, style in DIGITS:
        img, label = digit_image(row, style)
        assert name == f"digit_{label}.png", (name, label)
        img.save(OUT / name, optimize=True)
    shapes_image()[0].save(OUT / "shapes.png", optimize=True)
    (OUT / "two_communities.txt").write_text(EDGES)
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")


if __name__ == "__main__":
    main()
