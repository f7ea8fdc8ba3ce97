"""SIGTERM and SIGINT (Ctrl-C) while ``train`` runs: both end a run the same way, after the current
step, with the last checkpoint kept, exit status 1 and one line saying how to resume
(:class:`TrainingStopped`, raised by :func:`proformer.train.train`)."""

from __future__ import annotations

import signal
import threading

import lightning as L

from .module import TrainingFailed

__all__ = ["STOP_SIGNALS", "StopSignals", "StopNow", "TrainingStopped"]


class TrainingStopped(TrainingFailed):
    """Training was stopped by SIGTERM or SIGINT (Ctrl-C) before it finished; ``--resume`` continues it."""


#: The signals that stop a run, as its messages name them. Both end it the same way: after the
#: current step, with the last checkpoint kept, exit status 1 and one line saying how to resume.
STOP_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl-C)"}


class StopNow(TrainingStopped):
    """A second SIGINT (Ctrl-C) before the run could stop after its step: stop at once."""


class StopSignals(L.Callback):
    """SIGTERM and SIGINT (Ctrl-C) while ``train`` runs: both end the run the same way.

    Until ``trainer.fit`` starts (while the data are read and checked), either raises
    :class:`TrainingStopped`: Python's default handlers would end the process with no word
    (SIGTERM) or a traceback (SIGINT). In ``fit``, Lightning sets its own SIGTERM handler (stop
    after the current step, raising ``SIGTERMException``) and also calls any handler already
    set, so ours must be gone by then: :meth:`hand_over`, called just before ``fit``, restores
    the previous one. SIGINT Lightning leaves to Python: a ``KeyboardInterrupt`` wherever the
    step is, which its ``fit`` turns into "attempting graceful shutdown" and ``sys.exit(1)``.
    Here a SIGINT in ``fit`` is noted instead, and this callback raises the same
    ``SIGTERMException`` at the end of the current (training or validation) step; a second
    SIGINT before then stops at once (:class:`StopNow`). :attr:`received` names the signal.
    A signal the process ignores (``nohup``, a shell's background job: SIGINT) stays ignored.
    """

    def __init__(self):
        self.received: str | None = None
        self.previous: dict = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signals go to the main thread only
            self.previous = {signum: signal.signal(signum, self._before_fit) for signum in STOP_SIGNALS
                             if signal.getsignal(signum) is not signal.SIG_IGN}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            if signal.getsignal(signum) in (self._before_fit, self._in_fit):
                signal.signal(signum, handler)

    def _before_fit(self, signum, frame):
        raise TrainingStopped(f"training was stopped by {STOP_SIGNALS[signum]} before its first step (while the data "
                              f"were read and checked); nothing was trained, so there is nothing to resume: start the "
                              f"run again")

    def hand_over(self) -> None:
        """Just before ``fit``: SIGTERM back to the handler before (Lightning's calls it), SIGINT noted."""
        if signal.SIGTERM in self.previous and signal.getsignal(signal.SIGTERM) == self._before_fit:
            signal.signal(signal.SIGTERM, self.previous[signal.SIGTERM])
        if signal.SIGINT in self.previous:
            signal.signal(signal.SIGINT, self._in_fit)

    def _in_fit(self, signum, frame):
        if self.received is not None:
            raise StopNow(f"training was stopped by a second {STOP_SIGNALS[signum]}")
        self.received = STOP_SIGNALS[signum]

    def _stop_if_received(self) -> None:
        if self.received is not None:
            from lightning.pytorch.utilities.exceptions import SIGTERMException

            raise SIGTERMException

    def on_train_batch_end(self, *args) -> None:
        self._stop_if_received()

    def on_validation_batch_end(self, *args) -> None:
        self._stop_if_received()
