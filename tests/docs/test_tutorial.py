"""docs/tutorial.md runs as written, and README.md's cheap Python examples run.

The tutorial's fenced blocks run in order, in a temporary folder that holds only the tutorial's
data (examples/tutorial/), with `polyhead` on PATH (this interpreter's console script) and this
checkout's sources on PYTHONPATH. Markers in HTML comments just before a block say how to treat it:

    <!-- tutorial: skip -->         not run (installation, a command a reader adapts)
    <!-- tutorial: file NAME -->    the block's text is written to NAME (a config the reader saves)
    <!-- tutorial: background -->   a server: started with `--port 0`, waited for on /ready, and
                                    stopped with Ctrl-C (SIGINT) after the last block; later blocks
                                    reach it where they say localhost:8000

Every other ```bash and ```python block runs (bash: `bash -e -o pipefail`, python: this
interpreter, each block a script of its own) and must exit with 0. A ```text or ```json block that
follows a run block with nothing but blank lines between is what the tutorial shows as its
output: every line of it must appear in the real output (stdout and stderr), with numbers
matching any number, runs of spaces any whitespace, and "..." anything (a line that is only
"..." is skipped). So labels, keys and messages are checked, scores and timings are not.

POLYHEAD_TUTORIAL_DUMP=DIR writes each run block and its real output to DIR (to update the
tutorial's shown outputs from a real run).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial.md"
DATA = REPO / "examples" / "tutorial"
BLOCK_TIMEOUT = 600

FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*tutorial:\s*(.*?)\s*-->\s*$")
RUNNABLE = ("bash", "python")
SHOWN = ("text", "json")


@dataclass
class Block:
    lang: str
    code: str
    line: int                   # 1-based line of the opening fence
    marker: str | None = None   # the tutorial marker just before it
    follows: bool = False       # only blank lines between the previous block and this one
    output: "Block | None" = None

    @property
    def runs(self) -> bool:
        return self.lang in RUNNABLE and self.marker in (None, "background")


def parse(markdown: str) -> list[Block]:
    """The fenced blocks of a Markdown text, each with its marker and its shown output."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    marker: str | None = None
    only_blank = False  # since the previous block closed
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        found = MARKER.match(line)
        if found:
            marker = found.group(1)
            only_blank = False
        elif fence:
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            block = Block(fence.group(1), "\n".join(body) + "\n", start + 1, marker, only_blank and marker is None)
            if blocks and block.follows and block.lang in SHOWN and blocks[-1].runs:
                blocks[-1].output = block
            blocks.append(block)
            marker = None
            only_blank = True
        elif line.strip():
            only_blank = False
            if marker is not None:
                raise AssertionError(f"tutorial.md:{i + 1}: a marker must come right before a block ({marker!r})")
        i += 1
    return blocks


NUMBER_OR_SPACE = re.compile(r"\s+|-?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")


def line_pattern(line: str) -> re.Pattern[str]:
    """A shown output line as a regex: numbers match any number, spaces any whitespace, ... anything."""
    pieces = []
    for part in line.strip().split("..."):
        out, pos = [], 0
        for m in NUMBER_OR_SPACE.finditer(part):
            out.append(re.escape(part[pos:m.start()]))
            out.append(r"\s+" if m.group().isspace() else r"-?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")
            pos = m.end()
        out.append(re.escape(part[pos:]))
        pieces.append("".join(out))
    return re.compile(".*?".join(pieces))


def missing_lines(shown: str, real: str) -> list[str]:
    """The lines of a shown output that the real output lacks."""
    return [line for line in shown.splitlines()
            if line.strip() and line.strip() != "..." and not line_pattern(line).search(real)]


def check_shown(block: Block, real: str) -> None:
    if block.output is None:
        return
    missing = missing_lines(block.output.code, real)
    assert not missing, (
        f"tutorial.md:{block.line}: the real output lacks these shown lines:\n  " + "\n  ".join(missing)
        + f"\n--- real output ---\n{real[-6000:]}"
    )


def test_line_pattern() -> None:
    assert line_pattern('{"label": "refund", "score": 0.99, ...}').search('{"label": "refund", "score": 1.0, "x": 2}')
    assert not line_pattern('{"label": "refund", ...}').search('{"label": "shipping", "score": 1.0}')
    assert line_pattern("intent     accuracy   0.9857").search("intent           accuracy       1.0000")
    assert line_pattern("polyhead: done in 28s; model saved to runs/tutorial").search(
        "polyhead: done in 131s; model saved to runs/tutorial")
    assert missing_lines("...\n  \nintent  n  70\n", "intent n 70") == []


def test_parse_pairs_outputs_and_markers() -> None:
    doc = ("<!-- tutorial: file a.yaml -->\n```yaml\nx: 1\n```\n\n```bash\necho hi\n```\n\n```text\nhi\n```\n"
           "Some prose.\n\n```text\nnot an output\n```\n<!-- tutorial: skip -->\n```bash\ncurl x\n```\n")
    blocks = parse(doc)
    assert [(b.lang, b.marker) for b in blocks] == [
        ("yaml", "file a.yaml"), ("bash", None), ("text", None), ("text", None), ("bash", "skip")]
    assert blocks[1].output is blocks[2] and blocks[2].output is None and blocks[3].output is None
    assert not blocks[4].runs


def test_tutorial_data_is_what_its_generator_makes(tmp_path: Path) -> None:
    """examples/tutorial/ is reproducible: the generator writes the shipped files byte for byte."""
    script = DATA / "make_tutorial_data.py"
    copy = tmp_path / "examples" / "tutorial"
    copy.mkdir(parents=True)
    shutil.copy(script, copy)
    shutil.copytree(REPO / "examples" / "data", tmp_path / "examples" / "data")
    subprocess.run([sys.executable, str(copy / script.name)], check=True, timeout=60)
    made = sorted(p.name for p in copy.iterdir() if p.name != script.name)
    assert made == sorted(p.name for p in DATA.iterdir() if p.is_file() and p.name != script.name)
    for name in made:
        assert (copy / name).read_bytes() == (DATA / name).read_bytes(), name


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)   # the venv's `polyhead` console script
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1", NO_COLOR="1")
    return env


def _run(block: Block, cwd: Path, env: dict[str, str], code: str) -> str:
    if block.lang == "bash":
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        script = cwd / f"_block_{block.line}.py"
        script.write_text(code, encoding="utf-8")
        command = [sys.executable, script.name]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    real = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"tutorial.md:{block.line}: exit status {done.returncode}\n--- block ---\n{code}--- output ---\n{real[-6000:]}")
    return real


class Server:
    """The tutorial's `polyhead serve` command, on a free port, as a reader runs it in a second terminal."""

    def __init__(self, block: Block, cwd: Path, env: dict[str, str]) -> None:
        command = block.code.strip()
        assert "\n" not in command, f"tutorial.md:{block.line}: a background block is one command"
        self.block = block
        self.proc = subprocess.Popen(["bash", "-c", f"exec {command} --port 0"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.port = self._wait_for_port(180)
        self._wait_ready(60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"on http://[\w.\[\]:]+?:(\d+) ", self.output())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"tutorial.md:{self.block.line}: the server did not start\n{self.output()}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"tutorial.md:{self.block.line}: /ready never answered 200\n{self.output()}")

    def address(self, code: str) -> str:
        return re.sub(r"(localhost|127\.0\.0\.1):8000\b", rf"\g<1>:{self.port}", code)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # Ctrl-C
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.2)  # the reader thread drains the pipe
        return self.proc.returncode


@pytest.mark.slow
@pytest.mark.integration
def test_tutorial_runs_as_written(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the tutorial's HTTP requests need curl")
    blocks = parse(TUTORIAL.read_text(encoding="utf-8"))
    assert sum(b.runs for b in blocks) >= 10, "the tutorial lost its commands?"
    work = tmp_path / "tutorial"
    work.mkdir()
    for path in DATA.iterdir():
        if path.suffix in (".csv", ".jsonl"):
            shutil.copy(path, work)
    env = _env()
    dump = os.environ.get("POLYHEAD_TUTORIAL_DUMP")
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
    server: Server | None = None
    try:
        for block in blocks:
            if block.marker and block.marker.startswith("file "):
                (work / block.marker[len("file "):].strip()).write_text(block.code, encoding="utf-8")
                continue
            if not block.runs:
                continue
            started = time.monotonic()
            if block.marker == "background":
                assert server is None, f"tutorial.md:{block.line}: one server at a time"
                server = Server(block, work, env)
                continue
            code = server.address(block.code) if server else block.code
            real = _run(block, work, env, code)
            if dump:
                Path(dump, f"{block.line:04d}-{block.lang}.txt").write_text(
                    f"{code}\n--- {time.monotonic() - started:.1f} s ---\n{real}", encoding="utf-8")
            check_shown(block, real)
    finally:
        status = server.stop() if server else 0
    if server:
        if dump:
            Path(dump, f"{server.block.line:04d}-serve.txt").write_text(server.output(), encoding="utf-8")
        assert status == 0, f"the server exited with {status} on Ctrl-C\n{server.output()}"
        check_shown(server.block, server.output())


# README.md's Python examples: those that run in seconds, in a folder of their own where
# examples/ and configs/ are at hand. Others are named here with the reason they do not run.
README_SKIP = {
    "polyhead.train(": "trains the real encoder for a few minutes (the tutorial's Python section covers polyhead.train)",
    "fit_heads(": "a sketch: texts and labels stand for the reader's own data",
    "from_pretrained(": "downloads from the Hugging Face Hub",
    "push_to_hub(": "uploads to the Hugging Face Hub",
    "OpenAI(": "needs a running server (tests/serving covers the OpenAI client)",
}


def _readme_blocks() -> list:
    blocks = [b for b in parse((REPO / "README.md").read_text(encoding="utf-8")) if b.lang == "python"]
    params = []
    for b in blocks:
        reason = "marked skip" if b.marker == "skip" else next((r for s, r in README_SKIP.items() if s in b.code), None)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(b, id=f"README.md:{b.line}", marks=marks))
    return params or [pytest.param(None, marks=pytest.mark.skip(reason="README.md has no Python block"))]


@pytest.mark.integration
@pytest.mark.parametrize("block", _readme_blocks())
def test_readme_python_block_runs(block: Block, tmp_path: Path) -> None:
    for name in ("examples", "configs"):
        (tmp_path / name).symlink_to(REPO / name)
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    done = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"README.md:{block.line}: exit status {done.returncode}\n{done.stderr[-4000:]}"
