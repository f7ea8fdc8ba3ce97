"""proformer.progress: in-place updates on a terminal, a few plain lines in a log."""

import io

from proformer.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_at_most_every_interval_and_a_final_line():
    log = io.StringIO()
    with Progress("predicted", total=1000, unit="sequences", every=3600, stream=log) as progress:
        for done in range(0, 1001, 10):
            progress.update(done)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 1 and lines[0].startswith("predicted: 1,000 of 1,000 sequences")


def test_every_zero_writes_each_update_on_its_own_line():
    log = io.StringIO()
    progress = Progress("read", every=0, stream=log)
    for done in (5, 10):
        progress.update(done)
    progress.close()
    assert [line.split(" (")[0] for line in log.getvalue().splitlines()] == ["read: 5", "read: 10", "read: 10"]


def test_a_terminal_line_is_rewritten_in_place_and_ended_once():
    terminal = Terminal()
    with Progress("ISM", total=3, stream=terminal) as progress:
        for done in (1, 2, 3):
            progress.update(done)
    text = terminal.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1


def test_disabled_prints_nothing():
    log = Terminal()
    with Progress("x", enabled=False, stream=log) as progress:
        progress.update(1)
    assert log.getvalue() == ""
