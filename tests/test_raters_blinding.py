"""Blinding: nothing that differs by system reaches the rater's page, sizes and bytes included.

A 64 px system and a 96 px system used to keep their sizes in the store (``max_side`` only
shrank), so every screen told the rater which set was which by the images' natural width.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from harness.errors import UserError
from harness.formats.study_pairs import read_pairs
from raters_ui import assign
from raters_ui.controls import ControlSpec
from raters_ui.db import ItemImage, open_db
from raters_ui.storage import PAD_CHUNK, clean_png, common_size, fit, pad_png, png_chunks
from raters_ui.studies import StudySpec, create_study
from raters_ui.synthetic import make_pairs, make_study


def stored(store: Path) -> list[Path]:
    return sorted(store.glob("*.png"))


def test_systems_of_different_sizes_are_stored_at_one_size_and_one_length(tmp_path: Path):
    _, made = make_study(
        tmp_path,
        systems=("small-64", "big-96"),
        sizes={"small-64": 64, "big-96": 96},
        n_prompts=3,
        controls=ControlSpec(count=2, every=2),
    )
    files = stored(made.store_dir)
    sources = Counter(Image.open(p).size for p in (tmp_path / "src").rglob("*.png"))
    assert sources == {(64, 64): 24, (96, 96): 24}  # the systems really differ
    assert len(files) == 48 + 8  # main images and one degraded control set (mismatch reuses images)
    assert {Image.open(f).size for f in files} == {(96, 96)}  # the largest native size, under max_side
    assert len({f.stat().st_size for f in files}) == 1  # one byte length: sharp and blurry alike
    for f in files:
        data = f.read_bytes()
        assert [kind for kind, _ in png_chunks(data)] == [b"IHDR", b"IDAT", PAD_CHUNK, b"IEND"]
        assert Image.open(f).info == {} and b"small-64" not in data and b"big-96" not in data
        assert Image.open(f).mode == "RGB"
    assert made.size.size == (96, 96) and made.size.native == {(64, 64): 24, (96, 96): 24}


def test_a_screen_shows_two_sets_of_identical_size_and_length(tmp_path: Path):
    db, made = make_study(tmp_path, systems=("a", "b"), sizes={"a": 64, "b": 96}, n_prompts=2, raters=1)
    rater = assign.find_rater(db, made.tokens.raters["rater-001"])
    screen = assign.current_screen(db, rater)
    shown = [made.store_dir / f for f in screen.set_a + screen.set_b]
    assert len(shown) == 16
    assert {Image.open(p).size for p in shown} == {(96, 96)}
    assert {p.stat().st_size for p in shown} == {shown[0].stat().st_size}


def test_max_side_caps_the_common_size_and_image_size_sets_it(tmp_path: Path):
    pairs = read_pairs(make_pairs(tmp_path / "src", n_prompts=1, sizes={"sys1": 96, "sys2": 200}))
    db = open_db(tmp_path / "s.db", create=True)
    made = create_study(db, pairs, StudySpec(name="x", max_side=48), tmp_path / "st1")
    assert {Image.open(f).size for f in stored(made.store_dir)} == {(48, 48)}
    made = create_study(db, pairs, StudySpec(name="y", image_size=128), tmp_path / "st2")
    assert {Image.open(f).size for f in stored(made.store_dir)} == {(128, 128)}  # 96 up, 200 down


def test_common_size_rules():
    assert common_size([(64, 64)] * 3 + [(96, 96)] * 3).size == (96, 96)
    assert common_size([(1024, 1024), (256, 256)], max_side=512).size == (512, 512)
    assert common_size([(1024, 1024)], max_side=None).size == (1024, 1024)
    assert common_size([(64, 64)], image_size=256).size == (256, 256)
    # The most frequent aspect ratio wins; the longer side is the largest native one.
    assert common_size([(96, 64)] * 3 + [(64, 64)]).size == (96, 64)
    assert common_size([(64, 96)] * 3 + [(128, 128)]).size == (85, 128)
    with pytest.raises(UserError, match="stored image side"):
        common_size([(64, 64)], image_size=8)


def test_fit_crops_another_aspect_ratio_at_the_centre_then_resamples():
    img = Image.new("RGB", (120, 60), (255, 0, 0))
    img.paste((0, 0, 255), (30, 0, 90, 60))  # a blue centre square, red margins
    out = np.asarray(fit(img, (32, 32)))
    assert out.shape == (32, 32, 3) and out[..., 2].min() > 200 and out[..., 0].max() < 60


def test_padding_keeps_the_pixels_and_reaches_the_length():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    data = clean_png(img, (40, 40))
    padded = pad_png(data, len(data) + 500)
    assert len(padded) == len(data) + 500
    assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(padded))), np.asarray(img))
    with pytest.raises(ValueError):
        pad_png(data, len(data) + 5)  # a chunk needs 12 bytes


def test_the_store_is_padded_again_when_more_images_come(tmp_path: Path):
    from raters_ui.storage import ImageStore, StoreWriter

    src = tmp_path / "src"
    src.mkdir()
    flat, noisy = src / "flat.png", src / "noisy.png"
    Image.new("RGB", (32, 32), (10, 20, 30)).save(flat)
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(noisy)
    writer = StoreWriter(ImageStore(tmp_path / "st"), (32, 32))
    a = writer.add_file(str(flat))
    first = writer.equalize()
    assert writer.equalize() == first  # idempotent
    b = writer.add_file(str(noisy))
    total = writer.equalize()
    assert total > first
    assert {(tmp_path / "st" / n).stat().st_size for n in (a, b)} == {total}
    assert [k for k, _ in png_chunks((tmp_path / "st" / a).read_bytes())].count(PAD_CHUNK) == 1


def test_item_images_point_at_equal_files(tmp_path: Path):
    db, made = make_study(tmp_path, systems=("a", "b", "c"), sizes={"a": 64, "c": 80}, n_prompts=2)
    with db.read() as s:
        names = set(s.scalars(select(ItemImage.file)))
    assert names and {(made.store_dir / n).stat().st_size for n in names} == {stored(made.store_dir)[0].stat().st_size}
