"""A run's Record for GitHub Actions: workflow commands (annotations) and the job summary."""

from __future__ import annotations

from .. import PROG
from .record import Case, Record


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command property (title=...), escaped as the runner unescapes it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(record: Record) -> list[str]:
    """One `::error` or `::warning` line per refused or failed object (refusals and drift
    warn, failures err, as in the log), and one `::error` for the run's own failure."""
    lines = []
    for case in record.cases:
        if case.verdict != "failure":
            continue
        command = "error" if case.level == "error" else "warning"
        title = f"{PROG} {record.command}: {case.action} {case.name} {case.outcome}"
        lines.append(_command(command, title, _message(case)))
    failure = record.run_failure
    if failure is not None:
        title = f"{PROG} {record.command}: {record.outcome or 'error'}"
        message = failure.message
        if failure.codes():
            message += f"\n{failure.codes()}"
        lines.append(_command("error", title, message))
    return lines


def _command(command: str, title: str, message: str) -> str:
    return f"::{command} title={escape_property(title)}::{escape_data(message)}"


def _message(case: Case) -> str:
    lines = [case.detail or case.outcome]
    if case.failure is not None and case.failure.codes():
        lines.append(case.failure.codes())
    if case.cypher:
        lines.append(case.cypher)
    return "\n".join(lines)


# What GitHub's Markdown could read as markup inside a table cell, each shown literally with a
# backslash: `|` would end the cell, the others start code, emphasis, links, strike-through or
# math. `<` and `&` (HTML, entities) become entities.
_MARKDOWN = frozenset("\\`*_[]|~$")


def cell(text: str) -> str:
    """Text for one Markdown table cell: one line, nothing read as markup or HTML."""
    out = []
    for char in " ".join(text.split()):
        if char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char in _MARKDOWN:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def summary(record: Record) -> str:
    """The run as Markdown for $GITHUB_STEP_SUMMARY: a heading, a table of every case, the
    counts and the server, and the run's error."""
    props = record.properties
    heading = (f"### {PROG} {cell(record.command)}: {cell(record.outcome or 'unknown')} "
               f"(exit code {record.exit_code})")
    lines = [heading, ""]
    if record.cases:
        lines += ["| object | action | outcome | result | time (ms) | detail |",
                  "|---|---|---|---|---:|---|"]
        for case in record.cases:
            time = "" if case.duration_ms is None else f"{case.duration_ms:g}"
            lines.append(f"| {cell(case.name)} | {cell(case.action)} | {cell(case.outcome)} | "
                         f"{case.verdict} | {time} | {cell(case.detail or '')} |")
        lines.append("")
    counts = ", ".join(f"{name} {value}" for name, value in record.counts.items())
    facts = [f"Statements: {counts}." if counts else ""]
    if "server_version" in props:
        facts.append(f"Server: Neo4j {cell(props['server_version'])} "
                     f"{cell(props.get('server_edition', ''))} "
                     f"({cell(props.get('dialect', ''))}).")
    facts.append(f"Target: {cell(props.get('target', 'not resolved'))}"
                 f" ({cell(props.get('database', 'the home database'))}).")
    facts.append(f"Run {cell(props.get('run_id', ''))}, "
                 f"{PROG} {cell(props.get('tool_version', ''))}.")
    lines.append(" ".join(fact for fact in facts if fact))
    if record.error is not None:
        codes = record.error.codes()
        lines += ["", f"**Error:** {cell(record.error.message)}"
                  + (f" ({cell(codes)})" if codes else "")]
    return "\n".join(lines) + "\n\n"
