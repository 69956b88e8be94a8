"""The `harness` command line as a user meets it, run as a real process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from harness.cli import SUBCOMMANDS

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def test_help_lists_every_subcommand_with_its_one_line_summary() -> None:
    out = harness("--help", COLUMNS="80").stdout
    for name, summary in SUBCOMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(summary)}$", out, re.MULTILINE), (name, out)


def test_version_is_the_installed_distribution_version() -> None:
    done = harness("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"harness {metadata.version('lvs-harness')}"


def test_help_and_requirements_import_no_media_stack() -> None:
    """Subcommand modules load lazily: neither `--help` nor `requirements` imports PyAV."""
    probe = (
        "import contextlib, io, sys\n"
        "from harness.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(sys.argv[1:])\n"
        "print(sorted(m for m in sys.modules if m == 'av' or m.startswith('harness.commands.')))\n"
    )
    for args in (["--help"], ["requirements", "--json"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
        )
        loaded = done.stdout.strip().splitlines()[-1]
        assert "'av'" not in loaded, (args, loaded)
    assert loaded == "['harness.commands.failures', 'harness.commands.requirements']"


def test_run_help_explains_its_positional_paths() -> None:
    out = harness("run", "--help", COLUMNS="100").stdout
    assert re.search(r"^\s+PATH\s+scenario files,? or folders of them", out, re.MULTILINE), out


def test_bash_completion_completes_subcommands_options_and_paths(tmp_path: Path) -> None:
    script = tmp_path / "harness.bash"
    script.write_text(harness("completion", "bash").stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        done = subprocess.run(
            ["bash", "-c",
             f'source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; '
             f'COMP_LINE="{line}"; COMP_POINT={len(line)}; _shtab_harness; '
             'printf "%s\\n" "${COMPREPLY[@]}"'],
            capture_output=True, text=True, timeout=30, cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("harness", "pri") == ["primary"]
    assert complete("harness", "primary", "--li") == ["--listen"]
    assert complete("harness", "completion", "z") == ["zsh"]
    assert complete("harness", "run", "harn") == ["harness.bash"]  # files for PATH


def test_zsh_completion_names_every_subcommand() -> None:
    done = harness("completion", "zsh")
    assert done.returncode == 0 and "#compdef harness" in done.stdout
    assert all(name in done.stdout for name in SUBCOMMANDS)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The error line (stderr's last; log lines of what started before may precede it)."""
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_primary_on_a_port_in_use_is_a_one_line_error(busy_port: int) -> None:
    done = harness("primary", "--listen", f"127.0.0.1:{busy_port}", "--secret", "s", "--quiet")
    assert _one_line_error(done) == (
        f"harness primary: cannot listen on 127.0.0.1:{busy_port} for Viewers: "
        "Address already in use"
    )


def test_primary_control_port_in_use_is_a_one_line_error(busy_port: int) -> None:
    done = harness(
        "primary", "--listen", "127.0.0.1:0", "--control", f"127.0.0.1:{busy_port}",
        "--secret", "s", "--quiet",
    )
    assert _one_line_error(done) == (
        f"harness primary: cannot listen on 127.0.0.1:{busy_port} for the control API: "
        "Address already in use"
    )


def test_toxiproxy_on_a_port_in_use_is_a_one_line_error(busy_port: int) -> None:
    done = harness("toxiproxy", "--port", str(busy_port))
    assert _one_line_error(done) == (
        f"harness toxiproxy: cannot listen on 127.0.0.1:{busy_port} for the Toxiproxy API: "
        "Address already in use"
    )


def test_viewer_at_a_closed_port_says_why_it_is_disconnected() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        done = harness(
            "viewer", "--connect", f"127.0.0.1:{port}", "--secret", "s", "--duration", "1.5",
            "--no-decode", "--quiet", COLUMNS="200",
        )
    why = f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert done.stderr.count(f"disconnected: {why}") == 1, done.stderr  # once, not per retry
    assert f"viewer finished in state DISCONNECTED ({why})" in done.stderr


def test_an_address_that_does_not_resolve_is_a_one_line_error() -> None:
    done = harness("toxiproxy", "--host", "no-such-host.invalid", "--port", "0")
    line = _one_line_error(done)
    assert line.startswith("harness toxiproxy: cannot listen on no-such-host.invalid:0 ")
    assert "Unknown error" not in line  # a lookup's negative errno is not an OS errno


def test_a_reader_that_is_gone_gets_no_traceback() -> None:
    """`harness completion bash | head -1`: a closed pipe ends the command quietly.

    The pipe's reading end is closed before the command writes anything, so every write
    fails, however small the output.
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*HARNESS, "completion", "bash"], stdout=write_end, stderr=subprocess.PIPE,
            text=True, timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
