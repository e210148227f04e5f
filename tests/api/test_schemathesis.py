"""schemathesis against /openapi.json, for a bounded time: no 5xx, no response breaking the schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from api_support import Served

#: Time budget of the run (seconds); the subprocess is killed well before pytest's timeout.
MAX_TIME = 60


def _st() -> str:
    local = Path(sys.executable).with_name("st")
    return str(local) if local.exists() else (shutil.which("st") or "st")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    served: Served, tmp_path: Path
) -> None:
    command = [
        _st(),
        "run",
        f"{served.url}/openapi.json",
        # the review pages' endpoints need a review store; their own tests cover them
        "--exclude-tag",
        "review",
        "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "25",
        "--max-time",
        str(MAX_TIME),
        "--request-timeout",
        "20",
        "--seed",
        "20261125",
        "--no-color",
    ]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=MAX_TIME + 45,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Server error" not in output
