"""Readers for the benchmark datasets, producing the same :class:`Dataset` as a generic folder.

The data is not shipped (its terms forbid redistribution). It is looked up in ``data_root``, else
``$COLDBREW_DATA``, else ``../shared/data`` beside a source checkout (only when coldbrew runs from
one) or beside the working directory, else the user's data directory
(``$XDG_DATA_HOME/coldbrew/data``, by default ``~/.local/share/coldbrew/data``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from coldbrew.data.cleaning import build_dataset, with_source
from coldbrew.data.frames import pd
from coldbrew.data.schema import CONTEXT, TIMESTAMP, Dataset, DatasetSpec

ENV_VAR = "COLDBREW_DATA"
_REPO_ROOT = Path(__file__).resolve().parents[3]

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
ML1M_AGES = {
    1: "under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"
}  # fmt: skip
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
GENDERS = {"M": "man", "F": "woman"}
RETAIL_SERVICE_CODES = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "B", "PADS"}
)
"""Online Retail stock codes (upper-cased) that are postage, fees, discounts, samples or
adjustments, not products: postage, dotcom postage, manual, carriage, discount, samples, bank
charges, Amazon fee, CRUK commission, bad-debt adjustment, pads (priced 0)."""
RETAIL_VOUCHER_PREFIX = "GIFT_0001_"
"""Gift vouchers (``gift_0001_10`` ... ``_50``), upper-cased: money, not products."""


class DatasetNotFoundError(FileNotFoundError):
    """The benchmark files are not where coldbrew looked; the message says where to put them."""


def user_data_dir() -> Path:
    """The per-user place for benchmark data: ``$XDG_DATA_HOME/coldbrew/data``, by default
    ``~/.local/share/coldbrew/data``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "coldbrew" / "data"


def default_roots() -> list[Path]:
    """Where benchmark data is looked for without ``--data-root`` or ``$COLDBREW_DATA``, in
    order: ``shared/data`` beside a source checkout (an installed package has none: its
    ``parents`` are the environment's folders), beside the working directory, the user's."""
    roots = [Path.cwd().parent / "shared" / "data", user_data_dir()]
    if (_REPO_ROOT / "pyproject.toml").is_file():
        roots.insert(0, _REPO_ROOT.parent / "shared" / "data")
    return list(dict.fromkeys(roots))  # run from beside the checkout, the first two are one


def data_root(explicit: str | Path | None = None) -> Path:
    """Where benchmark datasets live: the argument, ``$COLDBREW_DATA``, else the first of
    :func:`default_roots` that exists (the user's data directory when none does)."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    roots = default_roots()
    return next((root for root in roots if root.is_dir()), roots[-1])


def _folder(root: Path, name: str, files: tuple[str, ...]) -> Path:
    folder = root / name
    missing = [f for f in files if not (folder / f).exists()]
    if missing:
        looked = ", ".join(str(r) for r in default_roots())
        raise DatasetNotFoundError(
            f"dataset {name!r} not found: {folder} lacks {', '.join(missing)}. Put the "
            f"{name} files in {folder}, or point --data-root / ${ENV_VAR} at the folder that "
            f"holds {name}/ (without either, coldbrew looks in {looked}, in that order)."
        )
    return folder


def _read_sep(
    path: Path, names: list[str], encoding: str = "utf-8", sep: str = "::"
) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        sep=sep,
        engine="python" if len(sep) > 1 else "c",
        names=names,
        header=None,
        dtype=str,
        encoding=encoding,
        quoting=3,
        keep_default_na=False,
    )
    return with_source(frame.replace({"": None}), path.name)


def load_ml100k(root: Path) -> Dataset:
    folder = _folder(root, "ml-100k", ("u.data", "u.item", "u.user"))
    item_cols = ["item_id", "title", "release_date", "video_date", "url", *ML100K_GENRES]
    items = _read_sep(folder / "u.item", item_cols, encoding="latin-1", sep="|")
    flags = items[list(ML100K_GENRES)].astype(int).to_numpy(dtype=bool)
    items["genres"] = ["|".join(np.array(ML100K_GENRES)[row]) for row in flags]
    items["year"] = items["release_date"].str[-4:]
    items = items[["item_id", "title", "genres", "year", "_file", "_line"]]
    users = _read_sep(folder / "u.user", ["user_id", "age", "gender", "occupation", "zip"], sep="|")
    users["gender"] = users["gender"].map(GENDERS)
    users = users.drop(columns=["zip"])
    inter = _read_sep(folder / "u.data", ["user_id", "item_id", "value", "timestamp"], sep="\t")
    spec = DatasetSpec(
        name="ml-100k",
        item_text=("title", "genres"),
        user_attributes=("age", "gender", "occupation"),
        positive_threshold=4.0,
    )
    return build_dataset(spec, items, inter, users)


def load_ml1m(root: Path) -> Dataset:
    ratings = "ratings_PARTIAL_users1-2999.dat.gz"
    folder = _folder(root, "ml-1m", ("movies.dat", "users.dat", ratings))
    movies = _read_sep(folder / "movies.dat", ["item_id", "title", "genres"], encoding="latin-1")
    extra_path = folder / "movies_extrainfos.dat"
    if extra_path.exists():
        extra_cols = [
            "item_id", "title2", "year", "rated", "released", "genre", "director", "writer",
            "actors", "plot", "poster",
        ]  # fmt: skip
        extra = _read_sep(extra_path, extra_cols).drop(columns=["_file", "_line"])
        movies = movies.merge(
            extra[["item_id", "director", "actors", "plot"]], on="item_id", how="left"
        )
    users = _read_sep(folder / "users.dat", ["user_id", "gender", "age", "occupation", "zip"])
    users["gender"] = users["gender"].map(GENDERS)
    users["age"] = users["age"].astype(int).map(ML1M_AGES)
    users["occupation"] = [ML1M_OCCUPATIONS[int(o)] for o in users["occupation"]]
    users = users.drop(columns=["zip"])
    inter = pd.read_csv(
        folder / ratings,
        sep="::",
        engine="python",
        names=["user_id", "item_id", "value", "timestamp"],
    )
    inter = with_source(inter.astype({"user_id": str, "item_id": str}), ratings)
    spec = DatasetSpec(
        name="ml-1m",
        item_text=("title", "genres", "plot"),
        item_attributes=("director", "actors"),
        user_attributes=("age", "gender", "occupation"),
        positive_threshold=4.0,
    )
    return build_dataset(spec, movies, inter, users)


def load_ml_latest_small(root: Path) -> Dataset:
    folder = _folder(root, "ml-latest-small", ("movies.csv", "ratings.csv"))
    movies = pd.read_csv(folder / "movies.csv", dtype={"movieId": str})
    movies = with_source(movies, "movies.csv", first_line=2)
    tags_path = folder / "tags.csv"
    if tags_path.exists():
        tags = pd.read_csv(tags_path, dtype={"movieId": str})
        tags["tag"] = tags["tag"].astype(str).str.strip().str.lower()
        tag_text = tags.groupby("movieId")["tag"].agg(lambda t: "|".join(dict.fromkeys(t)))
        movies["tags"] = movies["movieId"].map(tag_text)
    movies["genres"] = movies["genres"].replace("(no genres listed)", None)
    inter = pd.read_csv(folder / "ratings.csv", dtype={"userId": str, "movieId": str})
    inter = with_source(inter, "ratings.csv", first_line=2)
    spec = DatasetSpec(
        name="ml-latest-small",
        item_text=("title", "genres"),
        item_attributes=("tags",),
        positive_threshold=4.0,
    )
    return build_dataset(
        spec,
        movies,
        inter,
        item_id="movieId",
        inter_user="userId",
        inter_item="movieId",
        inter_value="rating",
        inter_timestamp="timestamp",
    )


def load_citeulike_a(root: Path, max_tags: int = 20) -> Dataset:
    folder = _folder(root, "citeulike-a", ("titles.txt", "users.dat"))
    titles = (folder / "titles.txt").read_text(encoding="utf-8").splitlines()
    items = pd.DataFrame({"item_id": [str(i) for i in range(len(titles))], "title": titles})
    abstracts_path = folder / "abstracts_subset_aligned.csv"
    if abstracts_path.exists():
        abstracts = pd.read_csv(abstracts_path, dtype={"item_id": str})
        items["abstract"] = items["item_id"].map(abstracts.set_index("item_id")["raw_abstract"])
    tag_names_path, item_tags_path = folder / "tags.dat", folder / "item-tag.dat"
    if tag_names_path.exists() and item_tags_path.exists():
        names = tag_names_path.read_text(encoding="utf-8").splitlines()
        tag_lines = item_tags_path.read_text(encoding="utf-8").splitlines()
        items["tags"] = [
            "|".join(names[int(t)].replace("_", " ") for t in line.split()[1 : 1 + max_tags])
            for line in tag_lines
        ] + [None] * (len(items) - len(tag_lines))
    items = with_source(items, "titles.txt")
    users_lines = (folder / "users.dat").read_text(encoding="utf-8").splitlines()
    pairs = [
        (str(u), item, u + 1) for u, line in enumerate(users_lines) for item in line.split()[1:]
    ]
    inter = pd.DataFrame(pairs, columns=["user_id", "item_id", "_line"]).assign(_file="users.dat")
    spec = DatasetSpec(
        name="citeulike-a", item_text=("title", "abstract"), item_attributes=("tags",)
    )
    return build_dataset(spec, items, inter, inter_value=None, inter_timestamp=None)


def load_online_retail(root: Path, *, context: bool = False) -> Dataset:
    """UCI Online Retail (a UK giftware shop, 2010-12 to 2011-12) as implicit purchases.

    Stock codes are upper-cased (``15056bl`` is ``15056BL``); service codes and gift vouchers
    (:data:`RETAIL_SERVICE_CODES`, :data:`RETAIL_VOUCHER_PREFIX`) are dropped. A product's title
    is its most frequent mostly-upper-case description (:func:`retail_titles`); products without
    one are dropped (136 of the file's 3,942 product codes, 2 of them sold to a customer). An
    interaction is a sale line with a customer, not cancelled (invoice ``C...``) and with a
    positive quantity; a customer who bought a product again keeps one interaction, the first
    (value 1.0, time in Unix seconds), as the cold-item, warm and next-item splits expect one row
    per pair (a repeat would land in test with its first purchase in train, then be masked).
    Each customer's ``country`` is the most frequent one over their sale lines. ``context``:
    each purchase keeps its own as context (``{"time": ..., "location": country}``, issue 26;
    off by default, so the benchmarks' data stay as they were measured).
    """
    name = "online_retail.parquet"
    raw = pd.read_parquet(_folder(root, "online-retail", (name,)) / name)
    raw = with_source(raw, name).assign(code=raw["StockCode"].str.strip().str.upper())
    service = raw["code"].isin(RETAIL_SERVICE_CODES)
    raw = raw[~(service | raw["code"].str.startswith(RETAIL_VOUCHER_PREFIX))]
    titles = retail_titles(raw["code"], raw["Description"])
    items = with_source(titles.rename_axis("item_id").reset_index(name="title"), name)
    sales = raw[
        ~raw["InvoiceNo"].str.startswith("C")
        & (raw["Quantity"] > 0)
        & raw["CustomerID"].notna()
        & raw["code"].isin(titles.index)
    ]
    sales = sales.assign(
        user_id=sales["CustomerID"].astype("int64").astype(str),
        timestamp=_unix_seconds(sales["InvoiceDate"]),
        value=1.0,
    )
    users = _most_frequent(sales["user_id"], sales["Country"]).rename("country")
    users = with_source(users.rename_axis("user_id").reset_index(), name)
    first = sales.sort_values(["timestamp", "_line"]).drop_duplicates(["user_id", "code"])
    columns = ["user_id", "code", "value", "timestamp", "Country", "_file", "_line"]
    inter = first.sort_values("_line")[columns].rename(columns={"code": "item_id"})
    spec = DatasetSpec(name="online-retail", item_text=("title",), user_attributes=("country",))
    named = {"time": "timestamp", "location": "Country"} if context else None
    return build_dataset(spec, items, inter, users, inter_context=named)


def retail_titles(codes: pd.Series, descriptions: pd.Series) -> pd.Series:
    """Each code's most frequent mostly-upper-case description (ties: the first in sort order).

    Descriptions are stripped with single spaces and ``Â£`` read back as ``£`` (the copy's
    mojibake). "Mostly upper case" (more upper- than lower-case letters) keeps product titles
    with a unit in lower case (``BAG 125g SWIRLY MARBLES``, the only title of 16 products) and
    drops the staff notes (``check``, ``damaged``, ``Found``, ``?``).
    """
    text = descriptions.str.replace("Â£", "£", regex=False)
    text = text.str.replace(r"\s+", " ", regex=True).str.strip()
    mostly_upper = (text.str.count("[A-Z]") > text.str.count("[a-z]")).fillna(False)
    keep = mostly_upper.astype(bool).to_numpy()
    return _most_frequent(codes[keep], text[keep])


def _most_frequent(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Per key, its most frequent value; ties go to the first value in sort order."""
    counts = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy()}).value_counts()
    frame = (
        counts.rename("n")
        .reset_index()
        .sort_values(["key", "n", "value"], ascending=[True, False, True])
    )
    return frame.drop_duplicates("key").set_index("key")["value"].rename(None)


def _unix_seconds(dates: pd.Series) -> pd.Series:
    """``YYYY-MM-DD HH:MM:SS`` strings (the shop's local time, read as UTC) as Unix seconds."""
    parsed = pd.to_datetime(dates, format="%Y-%m-%d %H:%M:%S")
    return (parsed - pd.Timestamp(0)) // pd.Timedelta(seconds=1)


LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "ml-100k": load_ml100k,
    "ml-1m": load_ml1m,
    "ml-latest-small": load_ml_latest_small,
    "citeulike-a": load_citeulike_a,
    "online-retail": load_online_retail,
}


def load_with_context(name: str, root: Path) -> Dataset:
    """Benchmark ``name`` with each event's context: Online Retail's time and country
    (:func:`load_online_retail` with ``context=True``); any other dataset's time (its
    timestamp) as its only context, none where an event has no timestamp (issue 26)."""
    if name == "online-retail":
        return load_online_retail(root, context=True)
    dataset = LOADERS[name](root)
    times = dataset.interactions[TIMESTAMP]
    contexts = [None if np.isnan(t) else {"time": float(t)} for t in times]
    return dataset.with_interactions(dataset.interactions.assign(**{CONTEXT: contexts}))
