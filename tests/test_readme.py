"""Goal: the README cannot drift from the product. Method: run what it shows, literally.

- `sluice serve` with no flags, in a fresh empty working directory, with no SLUICE_* environment
  but the two ports: it must come up with its data in `./sluice-data` (resolved to an absolute
  path, printed in the ready line and in /v1/cluster) and its transform engine working.
- The Quickstart section's fenced `sh` and `python` blocks are extracted and run, in order, against
  a broker; where a block is followed by a `text` block, that block is the output the README
  promises and stdout must equal it. The only rewrite is the address: `localhost:9092` becomes the
  test broker's (ports are the one thing a test may choose).
"""

import re
import subprocess
import sys

from conftest import REPO, Broker
from transforms import deploy_ok, plugin

BLOCK_RE = re.compile(r"^```(\w+)\n(.*?)^```\n", re.S | re.M)
RUN_TIMEOUT_S = 120


class NoFlagsBroker(Broker):
    """`sluice serve` exactly as the README's first command: no flags at all."""

    def command(self):
        return [str(self.binary), "serve"]


def test_serve_with_no_flags_in_a_fresh_directory(tmp_path):
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    b = NoFlagsBroker(cwd / "sluice-data", tmp_path / "broker.stderr.log", cwd=cwd,
                      env={"SLUICE_KAFKA_ADDR": "127.0.0.1:0", "SLUICE_ADMIN_ADDR": "127.0.0.1:0"})
    try:
        b.start()
        expected = str(cwd / "sluice-data")
        assert b.data_dir_reported == expected, "the ready line names the absolute data dir"
        assert b.cluster_info()["data_dir"] == expected
        assert b.http_get("/readyz")[0] == 200
        # The transform engine (whose compiled-code cache refused a relative path) really runs a module.
        sluice = [str(b.binary)]
        for topic in ("in", "out"):
            subprocess.run(sluice + ["topic", "create", topic, "--admin", f"http://{b.admin}"], check=True, timeout=RUN_TIMEOUT_S)
        deploy_ok(b, {"name": "up", "input": "in", "output": "out"}, plugin("uppercase"))
        assert (cwd / "sluice-data" / "transforms" / "cache").is_dir()
        subprocess.run(sluice + ["produce", "in", "--bootstrap-server", b.kafka], input="hello\n", text=True,
                       check=True, timeout=RUN_TIMEOUT_S)
        out = subprocess.run(sluice + ["consume", "out", "--from-beginning", "-n", "1", "--bootstrap-server", b.kafka],
                             capture_output=True, text=True, check=True, timeout=RUN_TIMEOUT_S)
        assert out.stdout.split() == ["HELLO"], out
        b.stop()
    finally:
        b.kill9()


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def runnable_blocks(section: str):
    """[(language, code, expected stdout or None)] for the section's sh/python blocks."""
    blocks = [(m.group(1), m.group(2)) for m in BLOCK_RE.finditer(section)]
    out = []
    for i, (lang, code) in enumerate(blocks):
        if lang not in ("sh", "python"):
            continue
        expected = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "text" else None
        out.append((lang, code, expected))
    return out


def test_the_quickstart_blocks_run_and_print_what_the_readme_shows(broker, tmp_path):
    blocks = runnable_blocks(readme_section("Quickstart"))
    assert [lang for lang, _, _ in blocks].count("sh") >= 2 and any(lang == "python" for lang, _, _ in blocks), blocks
    assert sum(expected is not None for _, _, expected in blocks) >= 2, "the README shows what the examples print"
    for lang, code, expected in blocks:
        code = code.replace("localhost:9092", broker.kafka).replace("127.0.0.1:9092", broker.kafka)
        command = ["bash", "-euo", "pipefail", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert done.returncode == 0, f"README {lang} block failed:\n{code}\n--- stderr ---\n{done.stderr}"
        if expected is not None:
            assert done.stdout == expected, f"README {lang} block printed something else:\n{code}\n--- stdout ---\n{done.stdout}"
