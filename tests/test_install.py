"""The ways in agree with each other: one repository address (_config.yml) behind the launch
buttons, the chapters' Colab install cell, pyproject's URLs and CITATION.cff; the Python
versions and the dependency floors said the same way everywhere; a wheel that holds what a
reader needs; and the install cell's own command, run against this source in a fresh venv."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import repository  # noqa: E402  (tools/repository.py)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
URL = repository.repository_url()


def test_one_repository_address_everywhere():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"].rstrip("/") == URL
    assert config["launch_buttons"]["colab_url"] and config["html"]["use_repository_button"]
    assert PYPROJECT["project"]["urls"] == {"Repository": URL, "Issues": f"{URL}/issues"}
    assert repository.differences() == [], "run `make repository` (python tools/repository.py)"


def test_every_chapter_opens_with_the_install_cell():
    chapters = [c["file"] for c in yaml.safe_load((ROOT / "_toc.yml").read_text())["chapters"]]
    for chapter in chapters:
        path = ROOT / f"{chapter}.ipynb"
        if not path.exists():
            continue   # a Markdown page (the references)
        code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert "".join(code[0]["source"]) == repository.install_cell(URL), chapter


def _run_install_cell(python, url, cwd, env=None):
    """The install cell's code as Colab runs it (google.colab imported), for ``url``."""
    cell = repository.install_cell(url)
    code = ("import sys, types\n"
            "sys.modules['google.colab'] = types.ModuleType('google.colab')\n" + cell)
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=900)


def test_install_cell_failure_says_what_to_do(tmp_path):
    """Until the repository is public the install fails: with advice, not git's error."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # the venv's Python runs the host's pip (no vae_course there), offline
    env = {**os.environ, "PYTHONPATH": _pip_location(), "PIP_NO_INDEX": "1"}
    result = _run_install_cell(venv / "bin" / "python", f"file://{tmp_path}/no-such-repository",
                               tmp_path, env)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()
    assert message[-3].startswith("RuntimeError: Could not install the book's package")
    assert "install the package from a wheel" in message[-2]
    assert message[-1].startswith("(pip: ")


def _pip_location():
    import pip

    return str(Path(pip.__file__).parents[1])


def _lower_bound(spec: SpecifierSet):
    bounds = [s.version for s in spec if s.operator == ">="]
    assert len(bounds) == 1, spec
    return bounds[0]


def test_floors_pin_every_lower_bound():
    """requirements/floors.txt (make floors) installs exactly pyproject's lowest versions."""
    floors = {}
    for line in (ROOT / "requirements" / "floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            floors[canonicalize_name(name)] = Version(version)
    declared = {canonicalize_name(r.name): Version(_lower_bound(r.specifier))
                for r in map(Requirement, PYPROJECT["project"]["dependencies"])}
    assert floors == declared


def test_python_versions_agree():
    """requires-python, the lock, environment.yml and the README say the same thing."""
    supported = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert [v for v in ("3.10", "3.11", "3.12", "3.13", "3.14") if v in supported] == \
        ["3.11", "3.12", "3.13"]
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in supported
    env = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+- python=3\.11$", env, re.M)
    assert "Python 3.11" in (ROOT / "requirements" / "lock.txt").read_text().splitlines()[0]
    readme = (ROOT / "README.md").read_text()
    assert "Python 3.11" in readme and "3.12" in readme and "3.13" in readme
    assert "Python 3.10" not in readme and "3.10–" not in readme


def test_every_documented_install_enables_the_server_extension():
    """A wheel install enables vae_course_jupyter (a data file); an editable one does not, so
    make copies the same file, environment.yml installs the package non-editable, and the
    README gives the one command for `pip install -e .`."""
    source = "jupyter-config/vae_course.json"
    assert PYPROJECT["tool"]["setuptools"]["data-files"] == {
        "etc/jupyter/jupyter_server_config.d": [source]}
    assert f"cp {source} $(VENV)/etc/jupyter/jupyter_server_config.d/" in \
        (ROOT / "Makefile").read_text()
    env = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+- \.$", env, re.M) and not re.search(r"^\s+- -e ", env, re.M)
    assert "jupyter server extension enable --sys-prefix vae_course_jupyter" in \
        (ROOT / "README.md").read_text()
    assert json.loads((ROOT / source).read_text())["ServerApp"]["jpserver_extensions"] == {
        "vae_course_jupyter": True}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel of this source, built offline with this venv's setuptools."""
    pytest.importorskip("setuptools")
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "--no-index", "-w", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return next(out.glob("vae_course-*.whl")), result.stdout + result.stderr


@pytest.mark.slow
def test_wheel_builds_without_warnings_and_holds_what_readers_need(wheel):
    import zipfile

    from vae_course import pretrained

    path, log = wheel
    problems = [line for line in log.splitlines() if re.search(
        r"(?i)warning|absent from the .packages|would be ignored", line)
        and "byte-compiling is disabled" not in line and "Location 'file:" not in line]
    assert problems == []
    names = set(zipfile.ZipFile(path).namelist())
    wanted = {"vae_course/__init__.py", "vae_course/__main__.py", "vae_course/exercises/__init__.py",
              "vae_course/static/explorer.js", "vae_course/pretrained/manifest.json",
              "vae_course_jupyter.py",
              "vae_course-0.1.0.data/data/etc/jupyter/jupyter_server_config.d/vae_course.json",
              "vae_course-0.1.0.dist-info/licenses/LICENSE"}
    for name in pretrained.names():
        entry = pretrained.info(name)
        wanted |= {f"vae_course/pretrained/{entry['file']}"}
        wanted |= {f"vae_course/pretrained/{a['file']}" for a in entry.get("assets", {}).values()}
    assert wanted - names == set()
    assert not [n for n in names if n.endswith(".keras")]
    metadata = zipfile.ZipFile(path).read("vae_course-0.1.0.dist-info/METADATA").decode()
    assert f"Project-URL: Repository, {URL}" in metadata
    assert "vae-course = vae_course.__main__:main" in zipfile.ZipFile(path).read(
        "vae_course-0.1.0.dist-info/entry_points.txt").decode()


@pytest.mark.slow
def test_install_cell_installs_into_an_existing_stack(tmp_path, data_dir):
    """Colab's situation: TensorFlow and friends already installed, then the install cell.

    A fresh venv sees this venv's packages (a .pth line: the existing stack, but not this
    checkout's editable vae_course) and runs the install cell against a git repository of this
    source, offline; then the reader's first steps: the console script, the pretrained list,
    a pretrained model loaded from the installed wheel, the server extension's config."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    repo = tmp_path / "repo"
    for name in files:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "snapshot"], cwd=repo, check=True)

    # The stack: this venv's packages (pip and setuptools too) but not this checkout's
    # editable vae_course, linked into one folder that the fresh venv reads through a .pth line.
    stack = tmp_path / "stack"
    stack.mkdir()
    ours = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "keras").exists())
    for entry in ours.iterdir():
        if not re.match(r"(?i)(__editable__|vae_course|_?_?editable___vae_course)", entry.name):
            (stack / entry.name).symlink_to(entry)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "existing_stack.pth").write_text(f"{stack}\n")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    result = _run_install_cell(python, f"file://{repo}", tmp_path, env)
    assert result.returncode == 0, result.stderr[-3000:]

    script = venv / "bin" / "vae-course"
    listing = subprocess.run([str(script), "pretrained"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=600)
    assert listing.returncode == 0, listing.stderr[-2000:]
    from vae_course import pretrained

    assert [line.split()[0] for line in listing.stdout.splitlines()] == pretrained.names()
    check = ("import vae_course, pathlib\n"
             "from vae_course import pretrained\n"
             "print(pathlib.Path(vae_course.__file__).parent)\n"
             "print(len(pretrained.load('mnist-conv-latent2').weights))\n")
    loaded = subprocess.run([str(python), "-c", check], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=600)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    where, count = loaded.stdout.split()
    assert Path(where).is_relative_to(venv) and int(count) > 0
    assert (venv / "etc/jupyter/jupyter_server_config.d/vae_course.json").exists()

    # The reader's commands, from the installed wheel, in another folder: a quick --help with
    # no TensorFlow start-up lines, evaluate on a VAE (progress on stderr) and a clear answer
    # for an autoencoder (no likelihood to evaluate).
    from test_console import TF_NOISE

    def run(*args):
        return subprocess.run([str(script), *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=600)

    helped = run("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage:")
    assert helped.stderr == ""
    scored = run("evaluate", "mnist-mlp-latent2", "--k", "5", "--examples", "40")
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert "importance-sampled NLL (K=5)" in scored.stdout
    assert "importance sampling: 40/40 images" in scored.stderr
    assert not TF_NOISE.search(scored.stderr), scored.stderr
    refused = run("evaluate", "mnist-conv-ae-2")
    assert refused.returncode == 2 and "is an autoencoder: it has no likelihood" in refused.stderr
    assert "Traceback" not in refused.stderr
