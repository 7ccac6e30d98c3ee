"""Defect 5 of issue 13: a `jiedu` command given bad input says what is wrong in one line on
standard error and exits 2 — never a traceback."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client
from typer.testing import CliRunner

import factories as f
from events import streams
from services.adapters.config import Settings
from services.cli import app

DRAFT = orjson.dumps(f.draft("ERR-1"))

CASES: list[tuple[str, list[str], str]] = [
    # (what, arguments ({tmp}: a fresh directory; {file}: an existing file), said on stderr)
    ("emit: a missing file", ["emit", "{tmp}/absent.json"], "cannot read it"),
    ("emit: a directory", ["emit", "{tmp}"], "cannot read it"),
    ("emit: a dotted source", ["emit", "{file}", "--source", "a.b/c"], "department 'a.b'"),
    ("emit: a case with a space", ["emit", "{file}", "--case", "x y"], "case 'x y'"),
    ("emit: a dotted case", ["emit", "{file}", "--case", "a.b"], "case 'a.b'"),
    ("emit: a wildcard case", ["emit", "{file}", "--case", "*"], "case '*'"),
    ("calendar due past year 9999", ["calendar", "due", "9999-12-31", "3"], "past the dates"),
    ("calendar due before year 1", ["calendar", "due", "0001-01-01T00:00+08:00", "3"],
     "past the dates"),
    ("report: --out an existing file", ["report", "quarterly", "2026Q3", "--out", "{file}"],
     "is a file"),
    ("report: --out below a file", ["report", "quarterly", "2026Q3", "--out", "{file}/r"],
     "cannot make the directory"),
    ("report: --weights a missing file",
     ["report", "quarterly", "2026Q3", "--out", "{tmp}/r", "--weights", "{tmp}/absent.json"],
     "not SUP-2 weights"),
    ("report: year 0", ["report", "quarterly", "0000Q1", "--out", "{tmp}/r"], "'0000Q1'"),
    ("report: the last quarter of 9999", ["report", "quarterly", "9999Q4", "--out", "{tmp}/r"],
     "'9999Q4'"),
    ("report: --as-of an Arabic-Indic digit",
     ["report", "quarterly", "2026Q3", "--out", "{tmp}/r", "--as-of", "٣"], "'٣'"),
    ("replay: --out an existing file", ["replay", "--as-of", "3", "--out", "{file}"],
     "is a file"),
    ("replay: --out below a file", ["replay", "--as-of", "3", "--out", "{file}/r"],
     "cannot make the directory"),
    ("replay: --as-of an Arabic-Indic digit", ["replay", "--as-of", "٣", "--out", "{tmp}/r"],
     "'٣'"),
    ("qa search: an empty question", ["qa", "search", "  "], "the question is empty"),
    ("qa search: --limit 0", ["qa", "search", "社保", "--limit", "0"], "--limit must be"),
    ("qa search: --limit 101", ["qa", "search", "社保", "--limit", "101"], "--limit must be"),
    ("qa search: --as-of an Arabic-Indic digit", ["qa", "search", "社保", "--as-of", "٢٠٢٦-٠١-٠١"],
     "'٢٠٢٦-٠١-٠١'"),
    ("qa search: --as-of no day", ["qa", "search", "社保", "--as-of", "2026-02-30"],
     "'2026-02-30'"),
    ("up: --http without a port", ["up", "--http", "localhost"], "--http localhost"),
    ("api: --http with no such port", ["api", "--http", "127.0.0.1:99999"], "HOST:PORT"),
    ("creds token issue: no such organ", ["creds", "token", "issue", "mars"], "'mars'"),
    ("qa publish-candidate: an empty answer", ["qa", "publish-candidate", "c1", "--answer", " "],
     "--answer is empty"),
    ("qa publish-candidate: a dotted system", ["qa", "publish-candidate", "c1", "--system", "a.b"],
     "system 'a.b'"),
    ("qa publish-candidate: a wildcard case", ["qa", "publish-candidate", "c1", "--case", "*"],
     "case '*'"),
]


@pytest.mark.parametrize(("what", "args", "said"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(
    what: str, args: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.setenv("JIEDU_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "event.json").write_bytes(DRAFT)
    argv = [a.format(tmp=tmp_path, file=tmp_path / "event.json") for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, (what, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert not (tmp_path / "data").exists(), "refused before starting anything"


async def test_emit_refuses_a_wildcard_case_before_it_reaches_intake(
    settings: Settings, nc: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--case '*'` used to publish a message INTAKE's transform cannot map: stuck, undecided."""
    monkeypatch.setenv("NATS_URL", settings.nats_url or "")
    (tmp_path / "event.json").write_bytes(DRAFT)
    result = CliRunner().invoke(app, ["emit", str(tmp_path / "event.json"), "--case", "*"])
    assert result.exit_code == 2 and "case '*'" in result.stderr
    assert (await nc.jetstream().stream_info(streams.INTAKE)).state.messages == 0


@pytest.mark.parametrize("value", ["a.b", "x y", "*", ">", "", "DRC", "drc\n"])
def test_subject_tokens_are_checked_in_one_place(value: str) -> None:
    with pytest.raises(streams.SubjectTokenError):
        streams.intake_subject(value, "oa", "C-1")
    with pytest.raises(streams.SubjectTokenError):
        streams.intake_subject("drc", value, "C-1")
    if value not in ("DRC",):
        with pytest.raises(streams.SubjectTokenError):
            streams.intake_subject("drc", "oa", value)
    assert streams.intake_subject("drc", "oa", "DRC-2026_1") == "jiedu.intake.drc.oa.DRC-2026_1"
