"""proformer.progress: tqdm in place on a terminal, a few plain lines in a log."""


from __future__ import annotations

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
    assert len(lines) == 1 and lines[0].startswith("predicted: 100%") and "1000/1000" in lines[0]
    assert "sequences/s" in lines[0]


def test_every_zero_writes_each_update_on_its_own_line():
    log = io.StringIO()
    progress = Progress("read", every=0, stream=log)
    for done in (5, 10):
        progress.update(done)
    progress.close()
    counts = [line.split(" [")[0] for line in log.getvalue().splitlines()]
    assert "read: 5" in counts and counts[-1] == "read: 10" and "\r" not in log.getvalue()


def test_a_terminal_line_is_rewritten_in_place_with_a_time_estimate_and_ended_once():
    terminal = Terminal()
    with Progress("ISM", total=3, stream=terminal) as progress:
        for done in (1, 2, 3):
            progress.update(done)
    text = terminal.getvalue()
    assert text.count("\r") >= 2 and text.endswith("\n") and text.count("\n") == 1
    assert "3/3" in text.split("\r")[-1] and "<" in text  # elapsed<remaining


def test_disabled_progress_prints_nothing_and_an_error_leaves_no_final_line_in_a_log():
    log = io.StringIO()
    with Progress("quiet", total=3, enabled=False, stream=log) as progress:
        progress.update(3)
    assert log.getvalue() == ""
    try:
        with Progress("failing", total=3, stream=log) as progress:
            progress.update(1)
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert log.getvalue() == ""  # the error is the last word, not a stale count
