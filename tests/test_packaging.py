"""A clean virtualenv with only the base package: what the pre-commit hook's environment holds.

Slow (pip builds the package and installs its dependencies; the pip cache helps): a subprocess
and a real `pip install` are the point here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    venv = tmp_path_factory.mktemp("base-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if pip.returncode != 0:
        message = f"pip install of the base package failed: {pip.stderr.strip()[-500:]}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield venv / "bin"


def _reconciler(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "reconciler"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(cwd), "OSR_NEW": "pw"},
    )


@pytest.mark.slow
def test_base_package_validates_and_names_the_extra_a_url_needs(base_venv: Path, tmp_path: Path) -> None:
    installed = subprocess.run(
        [str(base_venv / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "osr-reconciler" in installed
    assert not any(f"{driver}==" in installed for driver in ("psycopg", "pymysql", "pyodbc"))
    shutil.copytree(REPO / "tenants", tmp_path / "tenants")
    (tmp_path / ".git").mkdir()

    validated = _reconciler(base_venv, tmp_path, "validate")
    assert validated.returncode == 0, validated.stderr
    assert validated.stderr.startswith("OK: ")
    # Unicode's confusables ship with the package: a file of two look-alike names is refused.
    (tmp_path / "tenants" / "acme" / "look-alike.yaml").write_text(
        "version: 1\ncustomer: acme\ntenant: look-alike\nconnections:\n"
        "  - {name: Tromsø, absent: true}\n  - {name: Oslo, absent: true}\n"
        "  - {name: \u041eslo, absent: true}\n",
        encoding="utf-8",
    )
    refused = _reconciler(base_venv, tmp_path, "validate")
    assert refused.returncode == 1 and "looks the same as 'Oslo'" in refused.stderr, refused.stderr
    (tmp_path / "tenants" / "acme" / "look-alike.yaml").unlink()

    for url, extra, driver, what in [
        ("postgresql+psycopg://postgres@127.0.0.1/test", "postgresql", "psycopg", "PostgreSQL"),
        ("mysql+pymysql://root@127.0.0.1/test", "mariadb", "PyMySQL", "MariaDB/MySQL"),
    ]:
        planned = _reconciler(base_venv, tmp_path, "plan", "--store", url)
        assert planned.returncode == 1
        assert planned.stderr.splitlines() == [
            f"error: store {url}: {driver}, the driver for {what} stores, is not installed; "
            f"install it with pip install 'osr-reconciler[{extra}]'"
        ]

    listed = _reconciler(
        base_venv,
        tmp_path,
        "companies",
        "--integration",
        "visma-business",
        "--server",
        "sql01",
        "--login",
        "osr",
        "--password-env",
        "OSR_NEW",
    )
    assert listed.returncode == 1 and "pip install 'osr-reconciler[sources]'" in listed.stderr
    assert "Traceback" not in listed.stderr

    version = _reconciler(base_venv, tmp_path, "--version")
    assert (
        "psycopg not installed (PostgreSQL stores: pip install 'osr-reconciler[postgresql]')"
        in version.stdout
    )
