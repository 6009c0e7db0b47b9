"""Catalogs: synthetic generator, shipped example CSV, tables, Parquet, MovieLens-100k format."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lrtune.envs import (
    Catalog,
    RecSysEnv,
    example_catalog,
    example_catalog_path,
    load_catalog,
    load_movielens_100k,
    synthetic_catalog,
    write_example_catalog,
)
from lrtune.envs.catalog import MOVIELENS_GENRES


def _assert_same(a: Catalog, b: Catalog, atol: float = 2e-6) -> None:
    np.testing.assert_allclose(a.topics, b.topics, atol=atol)
    np.testing.assert_allclose(a.appeal, b.appeal, atol=atol)
    np.testing.assert_allclose(a.quality, b.quality, atol=atol)
    np.testing.assert_array_equal(a.clickbait, b.clickbait)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)


def test_synthetic_catalog_is_deterministic_and_has_clickbait() -> None:
    a = synthetic_catalog(5000, 10, 0.2, seed=1)
    b = synthetic_catalog(5000, 10, 0.2, seed=1)
    _assert_same(a, b, atol=0)
    assert not np.allclose(a.appeal, synthetic_catalog(5000, 10, 0.2, seed=2).appeal)
    np.testing.assert_allclose(a.topics.sum(axis=1), 1.0, atol=1e-5)
    assert 0.1 < a.clickbait.mean() < 0.3
    # Clickbait: high appeal, low quality.
    assert a.appeal[a.clickbait].mean() > a.appeal[~a.clickbait].mean() + 1.0
    assert a.quality[a.clickbait].mean() < a.quality[~a.clickbait].mean() - 0.5
    assert np.all(np.abs(a.quality) <= 1.0)
    assert a.topics.flags.writeable is False  # immutable


def test_shipped_example_catalog_matches_generator(tmp_path: Path) -> None:
    shipped = example_catalog_path()
    assert shipped.is_file()
    loaded = load_catalog(shipped)
    assert 200 <= loaded.num_items <= 1000
    _assert_same(loaded, example_catalog())
    out = write_example_catalog(tmp_path / "ex.csv")
    assert out.read_text() == shipped.read_text()


def test_env_from_example_catalog_csv() -> None:
    env = RecSysEnv(catalog_path=str(example_catalog_path()), num_candidates=8)
    assert env.model.num_items == example_catalog().num_items
    assert env.model.num_topics == example_catalog().num_topics
    check_env(env, skip_render_check=True)
    with pytest.raises(ValueError, match="num_candidates"):
        RecSysEnv(catalog_path=example_catalog_path(), num_candidates=301)


def test_catalog_table_roundtrip_and_errors(tmp_path: Path) -> None:
    cat = synthetic_catalog(50, 4, 0.3, seed=9)
    path = cat.to_csv(tmp_path / "c.csv")
    _assert_same(load_catalog(path), cat, atol=1e-6)
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,topic_0,appeal\n0,1.0,0.5\n")
    with pytest.raises(ValueError, match="quality"):
        load_catalog(bad)
    bad.write_text("topic_0,topic_1,appeal,quality\n0,0,0.5,0.1\n")
    with pytest.raises(ValueError, match="all-zero topic"):
        load_catalog(bad)
    bad.write_text("topic_0,appeal,quality\n1,0.5,1.5\n")
    with pytest.raises(ValueError, match="quality"):
        load_catalog(bad)
    with pytest.raises(ValueError, match="does not exist"):
        RecSysEnv(catalog_path=str(tmp_path / "missing.csv"))
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="format"):
        load_catalog(tmp_path / "x.json")


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow missing")
def test_parquet_catalog(tmp_path: Path) -> None:
    cat = synthetic_catalog(40, 3, 0.2, seed=4)
    path = tmp_path / "c.parquet"
    cat.to_frame().to_parquet(path)  # type: ignore[attr-defined]
    _assert_same(load_catalog(path), cat)
    env = RecSysEnv(catalog_path=str(path), num_candidates=5)
    assert env.model.num_items == 40


def test_parquet_without_pyarrow_gives_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.parquet"
    path.write_bytes(b"PAR1")
    real = importlib.util.find_spec

    def fake(name: str, *args: object) -> object:
        return None if name == "pyarrow" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(ValueError, match="pyarrow"):
        load_catalog(path)


def _write_movielens(root: Path) -> None:
    """A tiny fake MovieLens-100k in the original format (nothing of the real data)."""
    root.mkdir()
    flags = [
        [0, 1, 1] + [0] * 16,  # action, adventure
        [0] * 5 + [1] + [0] * 13,  # comedy
        [0] * 8 + [1] + [0] * 10,  # drama
        [0] * 19,  # no flag -> unknown
    ]
    lines = [
        f"{i + 1}|Movie {i + 1} (1995)|01-Jan-1995||http://example.invalid/{i + 1}|"
        + "|".join(str(f) for f in fl)
        for i, fl in enumerate(flags)
    ]
    lines[1] = lines[1].replace("Movie 2", "Caf\xe9 Movie")  # a latin-1 character
    (root / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    ratings = [(1, 1, 5), (2, 1, 4), (3, 1, 5), (1, 2, 1), (2, 2, 2), (1, 3, 3), (9, 99, 5)]
    (root / "u.data").write_text(
        "".join(f"{u}\t{i}\t{r}\t88125000{k}\n" for k, (u, i, r) in enumerate(ratings))
    )


def test_movielens_loader_on_synthetic_files(tmp_path: Path) -> None:
    root = tmp_path / "ml-100k"
    _write_movielens(root)
    cat = load_movielens_100k(root, prior_strength=0.0)
    assert cat.num_items == 4 and cat.num_topics == len(MOVIELENS_GENRES) == 19
    np.testing.assert_array_equal(cat.item_ids, [1, 2, 3, 4])
    np.testing.assert_allclose(cat.topics[0, 1:3], [0.5, 0.5])
    assert cat.topics[3, 0] == 1.0  # no genre -> unknown
    # Quality from the mean rating mapped to [-1, 1]; appeal from popularity (rating count).
    np.testing.assert_allclose(cat.quality[:3], [(14 / 3 - 3) / 2, (1.5 - 3) / 2, 0.0], atol=1e-6)
    assert cat.appeal[0] > cat.appeal[1] > cat.appeal[2] > cat.appeal[3]
    shrunk = load_movielens_100k(root)  # default prior pulls few-rating items to the mean
    assert abs(shrunk.quality[0]) < abs(cat.quality[0])
    env = RecSysEnv(catalog_path=str(root), num_candidates=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (19 + 2 + 3 * 20,)
    check_env(env, skip_render_check=True)


def test_movielens_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"u\.item"):
        load_movielens_100k(tmp_path)
    root = tmp_path / "ml"
    _write_movielens(root)
    (root / "u.item").write_text("1|too|short\n")
    with pytest.raises(ValueError, match="24"):
        load_movielens_100k(root)
