"""Goal: every `sluice` command and subcommand has `--help` with an "Examples:" section (the
issue's CLI promise), found by walking the real binary's own command tree, so a command added
later without examples fails here. Method: run `sluice [path…] --help` recursively."""

import re
import subprocess

from conftest import sluice_binary


def help_text(path):
    r = subprocess.run([str(sluice_binary()), *path, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (path, r.stderr)
    return r.stdout


def subcommands(text):
    m = re.search(r"\nCommands:\n(.*?)\n\n", text, re.S)
    if not m:
        return []
    names = [line.split()[0] for line in m.group(1).splitlines() if re.match(r"^  \S", line)]
    return [n for n in names if n != "help"]


def walk(path):
    text = help_text(path)
    if path:
        yield path, text
    for name in subcommands(text):
        yield from walk(path + [name])


def test_every_command_has_help_with_examples():
    seen = dict((" ".join(p), t) for p, t in walk([]))
    # The walk really found the tree (a parse that finds nothing must not pass).
    for cmd in ["serve", "apply", "diff", "delete", "get", "describe", "topic create", "topic alter", "produce",
                "consume", "transform init", "transform build", "transform test", "transform logs",
                "transform reset", "user create"]:
        assert cmd in seen, sorted(seen)
    missing = [cmd for cmd, text in seen.items() if "Examples:" not in text or not re.search(r"Examples:\n +[^\n]*sluice ", text)]
    assert missing == [], f"commands without examples: {missing}"
