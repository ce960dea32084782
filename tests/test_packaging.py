"""What `pip install .` installs: one import name, `article_qa`, and no developers' tools.

The wheel is built from a copy of the tracked files (as from a clean clone) without build
isolation, so the test needs no network and takes a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to know which files are tracked")
    setuptools = pytest.importorskip("setuptools", reason="building the wheel without isolation needs setuptools")
    if int(setuptools.__version__.split(".")[0]) < 68:
        pytest.skip(f"setuptools {setuptools.__version__} is older than pyproject.toml's build requirement")
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("article_qa-*.whl")
    return found


def test_the_wheel_installs_one_import_name_and_no_developer_tools(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert z.read(info).decode().split() == ["article_qa"]
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "article-qa = article_qa.cli:main" in entry_points
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"article_qa"}
    rooms = {n.split("/")[1] for n in names if n.startswith("article_qa/") and n.count("/") >= 2}
    assert rooms == {"qa", "index", "batch", "terminal", "web", "evaluation"}
    assert {"article_qa/__init__.py", "article_qa/__main__.py", "article_qa/cli.py"} <= set(names)
    for shipped in ("article_qa/qa/reader_weights/reader.json", "article_qa/qa/reader_weights/delta.safetensors",
                    "article_qa/index/data/article.txt", "article_qa/web/static/app.js"):
        assert shipped in names
    assert not [n for n in names if n.split("/")[1:2] and n.split("/")[1] in ("training", "bench", "tests", "docs")]


def test_the_installed_package_runs_as_python_m_article_qa(wheel, tmp_path):
    """Installed without the checkout on the path: `python -m article_qa --version` and the public
    names, which load lazily (importing the package pulls in neither numpy nor torch)."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                    "--target", str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    version = subprocess.run([sys.executable, "-m", "article_qa", "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("article-qa ")
    code = ("import sys, article_qa; assert article_qa.__file__.startswith(sys.argv[1]), article_qa.__file__; "
            "assert not {'numpy', 'torch'} & set(sys.modules); "
            "from article_qa import Answer, ArticleQA, Conversation, Settings; print('ok')")
    names = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert names.returncode == 0 and names.stdout.strip() == "ok", names.stderr
