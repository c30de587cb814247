"""``pip install coldbrew`` with no extras: the CLI works, and a missing extra is named.

A fresh venv (no system site-packages) gets the project's own wheel, installed with pip, plus
exactly the closure of its *base* requirements: each such distribution's files (from its RECORD)
are linked from the shared venv into one folder that a ``.pth`` puts on the path. Why this and not
a real download: a fresh install of torch and transformers takes minutes and ~1.5 GB, while this
takes seconds and proves the same three things offline: the wheel ships what the commands need
(sample data, static files), its declared base requirements are enough (``pip check``), and no
command imports an extra (sqlalchemy, fastapi... are absent, not just unused).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def base_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def closure(roots: list[Requirement]) -> dict[str, set[str]]:
    """Every distribution the roots need (markers evaluated, extras followed): name -> extras."""
    needed: dict[str, set[str]] = {}
    todo = [(r, "") for r in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        extras = set(req.extras)
        if name in needed and extras <= needed[name]:
            continue
        needed.setdefault(name, set()).update(extras)
        for line in distribution(req.name).requires or []:
            sub = Requirement(line)
            for wanted in ["", *sorted(needed[name])]:
                todo.append((sub, wanted))
    return needed


def link_distributions(names: set[str], into: Path) -> None:
    """Symlink each distribution's top-level files and folders (from RECORD) into ``into``."""
    into.mkdir()
    for name in names:
        dist = distribution(name)
        site = Path(str(dist.locate_file("")))
        for part in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            target = into / part
            if not target.exists() and (site / part).exists():
                target.symlink_to(site / part)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("base")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    names = set(closure(base_requirements())) - {"coldbrew"}
    link_distributions(names, tmp / "base-site")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "base-deps.pth").write_text(str(tmp / "base-site") + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp / "dist"), str(ROOT)],
        check=True,
    )  # fmt: skip
    wheel = next((tmp / "dist").glob("coldbrew-*.whl"))
    # pip answered 0 once under pytest-xdist and installed nothing (no bin/coldbrew): the base
    # venv never holds coldbrew before this, so nothing found "already installed" may skip it,
    # and pip is never told it already runs inside --python (it would install here instead)
    env = {k: v for k, v in os.environ.items() if k != "_PIP_RUNNING_IN_SUBPROCESS"}
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
        capture_output=True, text=True, cwd=tmp, env=env,
    )  # fmt: skip
    said = install.stdout + install.stderr
    assert install.returncode == 0 and (venv / "bin" / "coldbrew").is_file(), said
    check = subprocess.run([*pip, "check"], capture_output=True, text=True, cwd=tmp, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    return venv


def coldbrew(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "HF_HUB_OFFLINE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    return subprocess.run(
        [str(venv / "bin" / "coldbrew"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_extras_are_really_absent(base_venv: Path) -> None:
    for module in ("sqlalchemy", "fastapi", "uvicorn", "httpx", "peft", "implicit"):
        try:
            distribution(module)
        except PackageNotFoundError:
            continue
        probe = subprocess.run([base_venv / "bin" / "python", "-c", f"import {module}"])
        assert probe.returncode != 0, f"{module} leaked into the base venv"


def test_cli_works_with_base_dependencies_only(base_venv: Path, tmp_path: Path) -> None:
    done = coldbrew(base_venv, "--help", cwd=tmp_path)
    assert done.returncode == 0 and "recommend" in done.stdout, done.stderr
    done = coldbrew(base_venv, "demo", "--no-serve", "-k", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "free text (Chinese)" in done.stdout and "coldbrew[serve]" in done.stdout
    assert "why: Close in meaning to" in done.stdout  # a reason per recommendation, as README says
    site = next(base_venv.glob("lib/python*/site-packages"))
    assert (site / "coldbrew" / "serve" / "static" / "page-cjk.woff").stat().st_size > 10_000
    done = coldbrew(
        base_venv, "recommend", "--dataset", "sample", "--text", "a light jacket for spring",
        "-k", "3", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "jacket" in done.stdout.lower()
    assert "model: zero-shot (the hybrid needs the [cf] extra" in done.stderr  # said, not silent
    done = coldbrew(
        base_venv, "eval", "--dataset", "sample", "--encoder", "hashing",
        "--out", str(tmp_path / "eval.json"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "eval.json").exists()


def test_missing_extras_are_named(base_venv: Path, tmp_path: Path) -> None:
    done = coldbrew(base_venv, "serve", "--port", "1", cwd=tmp_path)
    assert done.returncode != 0
    assert "pip install 'coldbrew[serve]'" in done.stderr
    assert "Traceback" not in done.stderr
    done = coldbrew(base_venv, "demo", "--port", "1", cwd=tmp_path)  # the page needs [serve]
    assert done.returncode != 0 and "pip install 'coldbrew[serve]'" in done.stderr
    done = coldbrew(base_venv, "train", "--dataset", "sample", "--out", "m", cwd=tmp_path)
    assert done.returncode != 0
    assert "pip install 'coldbrew[train]'" in done.stderr and "Traceback" not in done.stderr


def test_an_installed_package_finds_benchmark_data_in_the_users_data_directory(
    base_venv: Path, tmp_path: Path
) -> None:
    """Installed, coldbrew looked for ``<venv>/lib/shared/data`` (issue 27, item 6); now it looks
    in ``$COLDBREW_DATA``, then the user's data directory, and says where it looked."""
    missing = coldbrew(base_venv, "recommend", "--dataset", "ml-100k", "--text", "x", cwd=tmp_path)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    user_dir = tmp_path / ".local" / "share" / "coldbrew" / "data"  # HOME is tmp_path
    assert str(user_dir) in missing.stderr and "COLDBREW_DATA" in missing.stderr
    assert "lib/shared" not in missing.stderr
    folder = user_dir / "ml-100k"
    folder.mkdir(parents=True)
    genres = "|".join(["0"] * 19)
    (folder / "u.item").write_text(
        f"1|Toy Story (1995)|01-Jan-1995||x|{genres}\n"
        f"2|Alien (1979)|01-Jan-1979||x|{genres}\n"
        f"3|Space station documentary (2001)|01-Jan-2001||x|{genres}\n",
        encoding="latin-1",
    )
    (folder / "u.user").write_text("1|24|M|student|00000\n2|53|F|writer|00000\n")
    (folder / "u.data").write_text("1\t1\t5\t881250949\n2\t2\t4\t881250950\n1\t3\t2\t881250951\n")
    found = coldbrew(
        base_venv, "recommend", "--dataset", "ml-100k", "--text", "toy story", "-k", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert "Toy Story" in found.stdout
