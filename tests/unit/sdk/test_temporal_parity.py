"""shoal's public names held against temporalio's (issue 17, item 2).

The reference is ``tests/data/temporalio_names.json`` (made by
``tests/helpers/temporalio_names.py``; temporalio need not be installed here). For each module
(workflow, activity, client, worker, common, exceptions, testing) and key class, every
temporalio name must exist on shoal's counterpart or have a row in ``docs/temporal-parity.md``
saying why not; a row for a name shoal now has fails too, so the doc stays true.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from helpers.temporalio_names import class_members

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "temporal-parity.md"
REFERENCE = ROOT / "tests" / "data" / "temporalio_names.json"
STATUSES = ("not yet", "not supported")

_HEADING = re.compile(r"^## (shoal(?:\.\w+)+)\s*$")
_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|\s*$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the doc: a temporalio name shoal lacks, and why."""

    target: str  # "shoal.workflow" or "shoal.client.Client"
    name: str
    status: str  # one of STATUSES
    issue: str  # the planning issue's number for "not yet", "-" for "not supported"
    why: str


def parse_doc(text: str) -> tuple[dict[tuple[str, str], Entry], list[str]]:
    """Read the doc's tables.

    Args:
        text: the markdown: ``## shoal.<module>[.<Class>]`` headings, each followed by a table
            whose rows are ``| `name` | status | issue | why |``.

    Returns:
        The entries by (target, name), and the format problems found (a row outside a
        section, a bad status, a "not yet" without an issue number, an empty reason, a
        duplicate).
    """
    entries: dict[tuple[str, str], Entry] = {}
    problems: list[str] = []
    target: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        heading = _HEADING.match(line)
        if heading:
            target = heading.group(1)
            continue
        if not line.startswith("| `"):
            continue  # prose, a table's header or its |---| line
        row = _ROW.match(line)
        where = f"docs/temporal-parity.md:{number}"
        if row is None or target is None:
            problems.append(f"{where}: not a `| `name` | status | issue | why |` row of a section")
            continue
        entry = Entry(target, *row.groups())
        if entry.status not in STATUSES:
            problems.append(f"{where}: status {entry.status!r} is not one of {STATUSES}")
        elif entry.status == "not yet" and not entry.issue.isdigit():
            problems.append(f"{where}: `not yet` needs the issue number that plans it")
        elif entry.status == "not supported" and entry.issue != "-":
            problems.append(f"{where}: `not supported` takes `-` as its issue")
        if not entry.why:
            problems.append(f"{where}: {entry.name} needs a reason")
        if (target, entry.name) in entries:
            problems.append(f"{where}: {target}.{entry.name} is listed twice")
        entries[(target, entry.name)] = entry
    return entries, problems


def reference_targets(reference: dict[str, Any]) -> dict[str, list[str]]:
    """temporalio's names by shoal target: ``shoal.<module>`` and ``shoal.<module>.<Class>``."""
    targets = {f"shoal.{module}": names for module, names in reference["modules"].items()}
    for module, classes in reference["classes"].items():
        for cls, members in classes.items():
            targets[f"shoal.{module}.{cls}"] = members
    return targets


def module_names(module: ModuleType | None) -> set[str]:
    """What a shoal module offers (None: the module does not exist)."""
    return set() if module is None else set(dir(module))


def class_names(cls: type | None) -> set[str]:
    """What a shoal class offers, under the rules temporalio's members were listed by."""
    return set() if cls is None else set(dir(cls)) | set(class_members(cls))


def shoal_names(targets: dict[str, list[str]]) -> dict[str, set[str]]:
    """The names shoal's real modules and classes have, for each target."""
    have: dict[str, set[str]] = {}
    for target in targets:
        parts = target.split(".")
        module_name = ".".join(parts[:2])
        module = (
            importlib.import_module(module_name)
            if importlib.util.find_spec(module_name) is not None
            else None
        )
        if len(parts) == 2:
            have[target] = module_names(module)
        else:
            have[target] = class_names(getattr(module, parts[2], None))
    return have


def check(
    targets: dict[str, list[str]],
    have: dict[str, set[str]],
    entries: dict[tuple[str, str], Entry],
) -> list[str]:
    """What is wrong between temporalio's names, shoal's and the doc.

    Args:
        targets: temporalio's names per shoal target.
        have: the names shoal has per target.
        entries: the doc's rows.

    Returns:
        One readable line per problem: a name shoal lacks with no row, a row for a name shoal
        has, a row for a name temporalio does not have (a typo, or temporalio dropped it).
    """
    problems = []
    for target, names in sorted(targets.items()):
        for name in names:
            listed = (target, name) in entries
            if name not in have[target] and not listed:
                problems.append(
                    f"missing: {target}.{name} (temporalio has it): add it to shoal, or a row "
                    f"under `## {target}` in docs/temporal-parity.md saying why not"
                )
            elif name in have[target] and listed:
                problems.append(
                    f"stale: {target}.{name} exists in shoal now: delete its row from "
                    "docs/temporal-parity.md"
                )
    for target, name in sorted(entries):
        if name not in targets.get(target, ()):
            problems.append(
                f"unknown: docs/temporal-parity.md lists {target}.{name}, which is not in "
                "tests/data/temporalio_names.json"
            )
    return problems


def _reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())


def _report(problems: list[str]) -> str:
    return f"\n{len(problems)} problem(s):\n" + "\n".join(problems)


# --- the real thing -------------------------------------------------------------------------


def test_reference_covers_the_seven_modules_and_names_its_version() -> None:
    reference = _reference()
    assert set(reference["modules"]) == {
        "workflow", "activity", "client", "worker", "common", "exceptions", "testing",
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", reference["temporalio_version"])
    assert "start_workflow" in reference["classes"]["client"]["Client"]


def test_doc_rows_are_well_formed() -> None:
    _, problems = parse_doc(DOC.read_text())
    assert not problems, _report(problems)


def test_every_temporalio_name_is_in_shoal_or_in_the_doc_and_the_doc_is_true() -> None:
    targets = reference_targets(_reference())
    entries, _ = parse_doc(DOC.read_text())
    problems = check(targets, shoal_names(targets), entries)
    assert not problems, _report(problems)


# --- the checker can fail -------------------------------------------------------------------

_FAKE_TARGETS = {"shoal.workflow": ["defn", "run", "new_random"]}
_FAKE_ROW = "| `new_random` | not yet | 17 | planned with dynamic handlers |"


def _fake_module(*names: str) -> ModuleType:
    module = ModuleType("fake_workflow")
    for name in names:
        setattr(module, name, object())
    return module


def test_a_missing_name_without_a_row_is_reported() -> None:
    have = {"shoal.workflow": module_names(_fake_module("defn", "run"))}
    problems = check(_FAKE_TARGETS, have, {})
    assert len(problems) == 1
    assert problems[0].startswith("missing: shoal.workflow.new_random")


def test_a_missing_name_with_a_row_passes() -> None:
    entries, format_problems = parse_doc(f"## shoal.workflow\n\n{_FAKE_ROW}\n")
    have = {"shoal.workflow": module_names(_fake_module("defn", "run"))}
    assert format_problems == []
    assert check(_FAKE_TARGETS, have, entries) == []


def test_a_row_for_a_name_shoal_has_is_reported_stale() -> None:
    entries, _ = parse_doc(f"## shoal.workflow\n\n{_FAKE_ROW}\n")
    have = {"shoal.workflow": module_names(_fake_module("defn", "run", "new_random"))}
    assert check(_FAKE_TARGETS, have, entries) == [
        "stale: shoal.workflow.new_random exists in shoal now: delete its row from "
        "docs/temporal-parity.md"
    ]


def test_a_row_for_a_name_temporalio_lacks_is_reported_unknown() -> None:
    entries, _ = parse_doc("## shoal.workflow\n\n| `new_randm` | not yet | 17 | typo |\n")
    have = {"shoal.workflow": {"defn", "run", "new_random"}}
    assert check(_FAKE_TARGETS, have, entries) == [
        "unknown: docs/temporal-parity.md lists shoal.workflow.new_randm, which is not in "
        "tests/data/temporalio_names.json"
    ]


def test_a_missing_class_member_is_reported() -> None:
    class Handle:
        def __init__(self) -> None:
            self.id = "wf"

        async def result(self) -> None: ...

    targets = {"shoal.client.WorkflowHandle": ["id", "result", "start_update"]}
    problems = check(targets, {"shoal.client.WorkflowHandle": class_names(Handle)}, {})
    assert [p.split(" ")[1] for p in problems] == ["shoal.client.WorkflowHandle.start_update"]


def test_a_module_that_does_not_exist_lacks_every_name() -> None:
    problems = check({"shoal.testing": ["WorkflowEnvironment"]}, {"shoal.testing": module_names(None)}, {})
    assert problems and "shoal.testing.WorkflowEnvironment" in problems[0]


def test_malformed_rows_are_reported() -> None:
    text = (
        "| `orphan` | not yet | 17 | a row before any section |\n"
        "## shoal.common\n"
        "| `A` | maybe | 17 | bad status |\n"
        "| `B` | not yet | - | no issue |\n"
        "| `C` | not supported | 17 | issue on a not supported |\n"
        "| `D` | not supported | - | |\n"
        "| `E` | not yet | 17 | first |\n"
        "| `E` | not yet | 17 | again |\n"
    )
    _, problems = parse_doc(text)
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"docs/temporal-parity.md:{n}" for n in (1, 3, 4, 5, 6, 8)
    ]
