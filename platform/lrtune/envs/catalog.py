"""Item catalogs for the recommender simulator: synthetic, from a table, or from MovieLens-100k.

A :class:`Catalog` holds, for each of ``N`` items:

* ``topics`` -- a ``(N, T)`` float32 matrix, each row a distribution over ``T`` topics
  (non-negative, sums to 1); observable by the agent;
* ``appeal`` -- how clickable the item looks (any finite real, about N(0, 1)); observable;
* ``quality`` -- how good the item is once consumed, in ``[-1, 1]``; hidden from the agent;
* ``clickbait`` -- a flag (informational only: the simulator uses appeal and quality).

Table format (CSV, or Parquet when ``pyarrow`` is installed): one row per item, columns
``appeal``, ``quality``, topic columns ``topic_0 .. topic_{T-1}`` (any columns whose name starts
with ``topic_``, taken in their table order; rows are normalised to sum to 1), and optional
``item_id`` and ``clickbait`` columns.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MOVIELENS_GENRES",
    "Catalog",
    "example_catalog",
    "example_catalog_path",
    "load_catalog",
    "load_movielens_100k",
    "synthetic_catalog",
    "write_example_catalog",
]

#: The 19 genre flags of MovieLens-100k's ``u.item``, in file order.
MOVIELENS_GENRES: tuple[str, ...] = (
    "unknown", "action", "adventure", "animation", "childrens", "comedy", "crime",
    "documentary", "drama", "fantasy", "film_noir", "horror", "musical", "mystery",
    "romance", "sci_fi", "thriller", "war", "western",
)  # fmt: skip

_EXAMPLE_ITEMS = 300
_EXAMPLE_TOPICS = 8
_EXAMPLE_SEED = 2024


@dataclass(frozen=True, eq=False)
class Catalog:
    """An immutable item catalog: topic mixtures, appeal, quality and clickbait flags."""

    topics: NDArray[np.float32]
    appeal: NDArray[np.float32]
    quality: NDArray[np.float32]
    clickbait: NDArray[np.bool_]
    item_ids: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    topic_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Validate, normalise topic rows to sum 1, convert dtypes and freeze the arrays."""
        topics = np.ascontiguousarray(self.topics, dtype=np.float32)
        if topics.ndim != 2 or topics.shape[0] < 1 or topics.shape[1] < 1:
            raise ValueError(
                f"catalog topics must be a 2-D (items, topics) array with at least one item and "
                f"one topic, got shape {topics.shape}"
            )
        n, t = topics.shape
        if not np.all(np.isfinite(topics)) or np.any(topics < 0):
            raise ValueError("catalog topics must be finite and non-negative")
        sums = topics.sum(axis=1, keepdims=True)
        if np.any(sums <= 0):
            bad = int(np.flatnonzero(sums[:, 0] <= 0)[0])
            raise ValueError(f"catalog item at row {bad} has an all-zero topic vector")
        topics = (topics / sums).astype(np.float32)
        appeal = np.ascontiguousarray(self.appeal, dtype=np.float32).reshape(-1)
        quality = np.ascontiguousarray(self.quality, dtype=np.float32).reshape(-1)
        clickbait = np.ascontiguousarray(self.clickbait, dtype=np.bool_).reshape(-1)
        for name, arr in (("appeal", appeal), ("quality", quality), ("clickbait", clickbait)):
            if arr.shape[0] != n:
                raise ValueError(f"catalog {name} has {arr.shape[0]} entries, expected {n}")
        if not np.all(np.isfinite(appeal)):
            raise ValueError("catalog appeal must be finite")
        if not np.all(np.isfinite(quality)) or np.any(np.abs(quality) > 1):
            raise ValueError("catalog quality must lie in [-1, 1]")
        ids = np.asarray(self.item_ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] == 0:
            ids = np.arange(n, dtype=np.int64)
        elif ids.shape[0] != n:
            raise ValueError(f"catalog item_ids has {ids.shape[0]} entries, expected {n}")
        names = tuple(self.topic_names) or tuple(f"topic_{k}" for k in range(t))
        if len(names) != t:
            raise ValueError(f"catalog topic_names has {len(names)} names, expected {t}")
        for attr, value in (
            ("topics", topics), ("appeal", appeal), ("quality", quality),
            ("clickbait", clickbait), ("item_ids", ids), ("topic_names", names),
        ):  # fmt: skip
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, attr, value)

    @property
    def num_items(self) -> int:
        """Number of items ``N``."""
        return int(self.topics.shape[0])

    @property
    def num_topics(self) -> int:
        """Number of topics ``T``."""
        return int(self.topics.shape[1])

    def to_frame(self) -> object:
        """Return the catalog as a pandas DataFrame in the table format (needs pandas)."""
        import pandas as pd

        data: dict[str, object] = {"item_id": self.item_ids}
        for k, name in enumerate(self.topic_names):
            data[name if name.startswith("topic_") else f"topic_{name}"] = self.topics[:, k]
        data["appeal"] = self.appeal
        data["quality"] = self.quality
        data["clickbait"] = self.clickbait.astype(np.int64)
        return pd.DataFrame(data)

    def to_csv(self, path: str | Path) -> Path:
        """Write the catalog as CSV (six decimals) and return the path."""
        path = Path(path)
        frame = self.to_frame()
        frame.to_csv(path, index=False, float_format="%.6f")  # type: ignore[attr-defined]
        return path

    @classmethod
    def from_table(cls, path: str | Path) -> Catalog:
        """Load a catalog from a CSV file, or a Parquet file when ``pyarrow`` is installed."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"catalog_path {str(path)!r} is not a file")
        import pandas as pd

        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            if importlib.util.find_spec("pyarrow") is None:
                raise ValueError(
                    f"catalog_path {str(path)!r} is a Parquet file, which needs the optional "
                    "package 'pyarrow' (pip install pyarrow); or convert it to CSV"
                )
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt") or suffix == "":
            frame = pd.read_csv(path)
        else:
            raise ValueError(
                f"catalog_path {str(path)!r}: unknown table format {suffix!r}; "
                "allowed: .csv, .parquet (or a MovieLens-100k directory)"
            )
        columns = [str(c) for c in frame.columns]
        topic_cols = [c for c in columns if c.startswith("topic_")]
        missing = [c for c in ("appeal", "quality") if c not in columns]
        if missing or not topic_cols:
            raise ValueError(
                f"catalog table {str(path)!r} lacks columns {missing or ['topic_*']}; needs "
                "'appeal', 'quality' and at least one 'topic_<name>' column"
            )
        n = len(frame)
        if n == 0:
            raise ValueError(f"catalog table {str(path)!r} has no rows")
        ids = frame["item_id"].to_numpy(np.int64) if "item_id" in columns else np.arange(n)
        cb = frame["clickbait"].to_numpy().astype(bool) if "clickbait" in columns else np.zeros(n)
        return cls(
            topics=frame[topic_cols].to_numpy(np.float32),
            appeal=frame["appeal"].to_numpy(np.float32),
            quality=frame["quality"].to_numpy(np.float32),
            clickbait=np.asarray(cb, dtype=bool),
            item_ids=np.asarray(ids, dtype=np.int64),
            topic_names=tuple(topic_cols),
        )


def synthetic_catalog(
    num_items: int,
    num_topics: int,
    clickbait_fraction: float = 0.2,
    seed: int = 0,
    topic_spread: float = 0.25,
) -> Catalog:
    """Generate a synthetic catalog deterministically from ``seed`` (vectorised, O(N*T)).

    Each item has a main topic ``k`` drawn from Dirichlet(2) topic popularities; its topic vector
    is ``(1 - topic_spread) * e_k + topic_spread * Dirichlet(1)``. Topics differ in mean quality
    (``N(0, 0.35)`` each) and in clickbait rate (uniform on ``[0, 2 * clickbait_fraction]``,
    capped at 0.95). Ordinary items: ``appeal ~ N(0, 1)``, ``quality = clip(topic_quality +
    0.15 * appeal + N(0, 0.35))``. Clickbait items: ``appeal ~ N(1.8, 0.6)``, ``quality ~
    N(-0.7, 0.15)``. Appeal is clipped to ``[-4, 4]`` and quality to ``[-1, 1]``.
    """
    if num_items < 1 or num_topics < 1:
        raise ValueError("synthetic_catalog needs num_items >= 1 and num_topics >= 1")
    if not 0.0 <= clickbait_fraction <= 1.0:
        raise ValueError("clickbait_fraction must lie in [0, 1]")
    if not 0.0 <= topic_spread <= 1.0:
        raise ValueError("topic_spread must lie in [0, 1]")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EC5]))
    popularity = rng.dirichlet(np.full(num_topics, 2.0))
    main = rng.choice(num_topics, size=num_items, p=popularity)
    mix = rng.dirichlet(np.ones(num_topics), size=num_items)
    topics = topic_spread * mix
    topics[np.arange(num_items), main] += 1.0 - topic_spread
    topic_quality = rng.normal(0.0, 0.35, num_topics)
    cb_rate = np.minimum(rng.uniform(0.0, 2.0 * clickbait_fraction, num_topics), 0.95)
    clickbait = rng.random(num_items) < cb_rate[main]
    appeal = rng.normal(0.0, 1.0, num_items)
    quality = topic_quality[main] + 0.15 * appeal + rng.normal(0.0, 0.35, num_items)
    n_cb = int(clickbait.sum())
    appeal[clickbait] = rng.normal(1.8, 0.6, n_cb)
    quality[clickbait] = rng.normal(-0.7, 0.15, n_cb)
    return Catalog(
        topics=topics.astype(np.float32),
        appeal=np.clip(appeal, -4.0, 4.0).astype(np.float32),
        quality=np.clip(quality, -1.0, 1.0).astype(np.float32),
        clickbait=clickbait,
    )


def example_catalog() -> Catalog:
    """The small example catalog shipped as ``data/example_catalog.csv`` (300 items, 8 topics).

    Deterministic: ``synthetic_catalog(300, 8, 0.2, seed=2024)`` rounded to six decimals, exactly
    what :func:`write_example_catalog` writes.
    """
    cat = synthetic_catalog(_EXAMPLE_ITEMS, _EXAMPLE_TOPICS, 0.2, seed=_EXAMPLE_SEED)

    def r6(a: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.round(a.astype(np.float64), 6).astype(np.float32)

    return Catalog(
        topics=r6(cat.topics), appeal=r6(cat.appeal), quality=r6(cat.quality),
        clickbait=cat.clickbait,
    )  # fmt: skip


def write_example_catalog(path: str | Path) -> Path:
    """Write :func:`example_catalog` as CSV to ``path`` (how the shipped file was made)."""
    return example_catalog().to_csv(path)


def example_catalog_path() -> Path:
    """Path of the shipped example catalog CSV (package data of ``lrtune.envs``)."""
    return Path(str(resources.files("lrtune.envs").joinpath("data", "example_catalog.csv")))


def load_movielens_100k(path: str | Path, prior_strength: float = 10.0) -> Catalog:
    """Build a catalog from a MovieLens-100k directory holding ``u.item`` and ``u.data``.

    MovieLens may not be redistributed, so nothing of it ships with lrtune: download it yourself
    and pass its directory. Topics are the 19 genre flags of ``u.item`` (pipe-separated, latin-1)
    normalised to sum 1 (a movie without flags gets ``unknown``). From ``u.data`` (tab-separated
    ``user item rating timestamp``): appeal is the standardised ``log(1 + rating count)``
    (popularity); quality is the Bayesian-shrunk mean rating ``(sum + m * global_mean) /
    (count + m)`` with ``m = prior_strength``, mapped from the 1..5 scale to ``[-1, 1]`` by
    ``(r - 3) / 2`` (unrated movies get the global mean). ``clickbait`` flags popular
    (appeal > 1) but poorly rated (quality < 0) items.
    """
    root = Path(path)
    item_file, data_file = root / "u.item", root / "u.data"
    if not item_file.is_file() or not data_file.is_file():
        raise ValueError(
            f"MovieLens-100k path {str(root)!r} must be a directory holding 'u.item' and 'u.data'"
        )
    if prior_strength < 0:
        raise ValueError("prior_strength must be >= 0")
    ids: list[int] = []
    flags: list[list[float]] = []
    with item_file.open(encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("|")
            if len(fields) < 5 + len(MOVIELENS_GENRES):
                raise ValueError(f"{item_file}:{lineno}: expected 24 '|'-separated fields")
            ids.append(int(fields[0]))
            flags.append([float(f) for f in fields[-len(MOVIELENS_GENRES) :]])
    if not ids:
        raise ValueError(f"{item_file} lists no movies")
    genre = np.asarray(flags, dtype=np.float64)
    genre[genre.sum(axis=1) == 0, 0] = 1.0  # no flag -> 'unknown'
    raw = np.loadtxt(data_file, dtype=np.int64, ndmin=2)
    if raw.shape[1] < 3:
        raise ValueError(f"{data_file}: expected tab-separated 'user item rating timestamp'")
    item_ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(item_ids)
    pos = np.searchsorted(item_ids, raw[:, 1], sorter=order)
    pos = np.minimum(pos, len(ids) - 1)
    known = item_ids[order[pos]] == raw[:, 1]
    row = order[pos[known]]
    ratings = raw[known, 2].astype(np.float64)
    count = np.bincount(row, minlength=len(ids)).astype(np.float64)
    total = np.bincount(row, weights=ratings, minlength=len(ids))
    global_mean = float(ratings.mean()) if ratings.size else 3.0
    denom = count + prior_strength
    mean = np.where(
        denom > 0, (total + prior_strength * global_mean) / np.maximum(denom, 1e-12), global_mean
    )
    pop = np.log1p(count)
    appeal = (pop - pop.mean()) / (pop.std() + 1e-9)
    quality = np.clip((mean - 3.0) / 2.0, -1.0, 1.0)
    return Catalog(
        topics=genre.astype(np.float32),
        appeal=appeal.astype(np.float32),
        quality=quality.astype(np.float32),
        clickbait=(appeal > 1.0) & (quality < 0.0),
        item_ids=item_ids,
        topic_names=tuple(f"topic_{g}" for g in MOVIELENS_GENRES),
    )


def load_catalog(path: str | Path) -> Catalog:
    """Load a catalog from a CSV/Parquet table or a MovieLens-100k directory."""
    p = Path(path)
    if p.is_dir():
        return load_movielens_100k(p)
    if not p.exists():
        raise ValueError(f"catalog_path {str(p)!r} does not exist")
    return Catalog.from_table(p)
