"""The README's Python example runs as written, and .ci/run calls the README's test command."""

from __future__ import annotations

import random
import re
import runpy

from conftest import REPO


def _python_block(section: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}", 1)[1]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def test_readme_python_example_runs(tmp_path, monkeypatch):
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(8000)]
    lines = [" ".join(rng.choice(words) for _ in range(15)) for _ in range(6000)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(_write(tmp_path / "example.py", _python_block("Python API"))))
    assert (tmp_path / "clf" / "model.safetensors").is_file() and (tmp_path / "clf" / "spiece.model").is_file()


def _write(path, text):
    path.write_text(text)
    return path


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = re.search(r"Run the tests:\n\n```bash\n(.*?)\n```", readme).group(1).strip()
    setup = re.search(r"```bash\n(python3 -m pip install [^\n]*?) && fnet demo\n```", readme).group(1).strip()
    assert test_command in ci.splitlines(), f"{test_command!r} not in .ci/run"
    for step in setup.split(" && "):
        wanted = set(step.split())
        assert any(wanted <= set(line.split()) for line in ci.splitlines()), f"no .ci/run line installs like {step!r}"
