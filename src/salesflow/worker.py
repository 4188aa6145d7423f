"""A long-running worker that performs due items: ``salesflow worker``.

Part of the imperative shell (it waits, installs signal handlers and logs): it calls
`Salesflow.run_due` in a loop, sleeps while nothing is due (until the next item is
due, at most ``poll`` seconds), logs a heartbeat, and stops cleanly when asked —
after the `run_due` call in hand, so a unit of work is never cut short by a stop
request. Any number of workers may run against one PostgreSQL database: the engine
claims items with ``FOR UPDATE SKIP LOCKED`` inside each unit's transaction, so a
worker that dies mid-batch loses its transaction and its items are due again.
"""

from __future__ import annotations

import importlib
import logging
import select
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from types import FrameType

import attrs

from salesflow.engine import Salesflow
from salesflow.errors import ValidationError
from salesflow.stores.base import Store

__all__ = [
    "Heartbeat",
    "StopRequests",
    "Worker",
    "load_engine_factory",
    "serve",
    "stopping_on_signals",
]

log = logging.getLogger("salesflow.worker")

EngineFactory = Callable[[Store], Salesflow]
"""Builds the worker's engine on an opened store: the host's sink, handlers, clock."""


@attrs.frozen(kw_only=True)
class Heartbeat:
    """What a worker reports at each heartbeat.

    Attributes:
        at: The engine clock's time of the beat.
        done: Items taken (performed, retried or failed) since the previous beat.
        total: Items taken since the worker started.
        next_due_at: When the earliest stored item is due; None when there is none.
    """

    at: datetime
    done: int
    total: int
    next_due_at: datetime | None


def _positive(name: str, value: float, *, whole: bool = False) -> float:
    kind = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a whole number >= 1" if whole else "a number of seconds > 0"
        raise ValidationError(f"{name}={value!r} must be {what}", field=name, value=value)
    return value


class _Waker:
    """An interruptible sleep: `wait` returns early once `wake` was called.

    A socket pair rather than a `threading.Event`: `wake` runs inside signal
    handlers, and ``Event.set`` there can deadlock on the lock the interrupted
    ``Event.wait`` holds; a non-blocking ``send`` takes no lock.
    """

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def wait(self, seconds: float) -> None:
        ready, _, _ = select.select([self._read], [], [], seconds)
        if ready:
            try:
                while self._read.recv(64):
                    pass
            except BlockingIOError:
                pass

    def wake(self) -> None:
        # a full buffer means already woken; a closed pair, a worker that is done
        with suppress(OSError):
            self._write.send(b"x")

    def close(self) -> None:
        self._read.close()
        self._write.close()


class Worker:
    """Runs `Salesflow.run_due` in a loop until stopped.

    Args:
        engine: The engine whose due items to perform (its clock, sink and handlers).
        batch: Items per `run_due` call (default 100, one unit of work). A stop
            request waits for the call in hand, so a large batch delays stopping.
        poll: The longest sleep, in seconds, when nothing is due: items scheduled by
            other processes are seen at the latest ``poll`` seconds later.
        heartbeat: Seconds between heartbeats, measured on the engine's clock.
        on_heartbeat: Called with each `Heartbeat` (after it is logged), e.g. to
            touch a liveness file.
        sleep: Called as ``sleep(seconds)`` to wait; tests pass one that advances a
            `FakeClock`. By default an interruptible wait that `request_stop` ends.
        outbox_grace: When the engine keeps an outbox (``Salesflow(outbox=True)``),
            each loop also publishes the outbox entries older than this many seconds
            that no engine delivered (a process killed between a commit and its
            sink): `Salesflow.deliver_outbox`. 60 by default.

    Raises:
        ValidationError: ``batch``, ``poll`` or ``heartbeat`` is out of range.
    """

    def __init__(
        self,
        engine: Salesflow,
        *,
        batch: int = 100,
        poll: float = 5.0,
        heartbeat: float = 60.0,
        on_heartbeat: Callable[[Heartbeat], None] | None = None,
        sleep: Callable[[float], object] | None = None,
        outbox_grace: float = 60.0,
    ) -> None:
        self.engine = engine
        self.outbox_grace = float(_positive("outbox_grace", outbox_grace))
        self.delivered = 0
        """Outbox entries this worker published for others (`Salesflow.deliver_outbox`)."""
        self.batch = int(_positive("batch", batch, whole=True))
        self.poll = float(_positive("poll", poll))
        self.heartbeat = float(_positive("heartbeat", heartbeat))
        self.on_heartbeat = on_heartbeat
        self._sleep = sleep
        # made by `run` for the default sleep, and closed when it returns
        self._waker: _Waker | None = None
        self._stop = False
        self.total = 0
        """Items taken since the worker was created."""

    @property
    def stopping(self) -> bool:
        """True once `request_stop` was called."""
        return self._stop

    def request_stop(self) -> None:
        """Ask `run` to return after the `run_due` call in hand (or at once when it
        sleeps). Safe to call from a signal handler or another thread."""
        self._stop = True
        waker = self._waker
        if waker is not None:
            waker.wake()

    def run(self, *, until_idle: bool = False, max_loops: int | None = None) -> int:
        """Perform due items until stopped.

        Each loop calls ``run_due(limit=batch)``. When it took a full batch the next
        loop starts at once; otherwise the worker sleeps until the next item is due,
        at most ``poll`` seconds (and no later than the next heartbeat).

        Args:
            until_idle: Never sleep; return as soon as a loop finds nothing due now
                (to run from cron, or in tests).
            max_loops: Return after this many loops.

        Returns:
            How many items this call took.

        Raises:
            Exception: Whatever `run_due` (or ``on_heartbeat``) raised, after logging
                it with its traceback; the items of the failed unit stay due (see
                `Salesflow.run_due`).
        """
        if max_loops is not None:
            _positive("max_loops", max_loops, whole=True)
        log.info(
            "worker started: batch %d, poll %gs, heartbeat %gs, store %s",
            self.batch,
            self.poll,
            self.heartbeat,
            type(self.engine.store).__name__,
        )
        waker = None
        if self._sleep is not None:
            sleep = self._sleep
        else:
            waker = self._waker = _Waker()
            sleep = waker.wait
        taken: list[int] = []
        try:
            self._loop(sleep, until_idle, max_loops, taken)
        except Exception:
            log.exception("the worker failed after %d item(s) and stops", sum(taken))
            raise
        finally:
            self._waker = None
            if waker is not None:
                waker.close()
        log.info("worker stopped: %d item(s) taken", sum(taken))
        return sum(taken)

    def _loop(
        self,
        sleep: Callable[[float], object],
        until_idle: bool,
        max_loops: int | None,
        taken_so_far: list[int],
    ) -> None:
        """The loop of `run`; appends what each `run_due` call took to
        ``taken_so_far``, so that `run` can report it even when a call raises."""
        since_beat = 0
        next_beat = self.engine.now() + timedelta(seconds=self.heartbeat)
        loops = 0
        while not self._stop and (max_loops is None or loops < max_loops):
            loops += 1
            taken = self.engine.run_due(limit=self.batch)
            taken_so_far.append(taken)
            # Only an engine that keeps its events in the outbox delivers others':
            # one without (a plain worker, events dropped) would throw them away.
            recovered = 0
            if self.engine.outbox:
                recovered = self.engine.deliver_outbox(
                    older_than=timedelta(seconds=self.outbox_grace), limit=self.batch
                )
            if recovered:
                self.delivered += recovered
                log.info(
                    "published %d outbox entr%s left undelivered",
                    recovered,
                    "y" if recovered == 1 else "ies",
                )
            since_beat += taken
            self.total += taken
            log.debug("batch: %d item(s) taken", taken)
            now = self.engine.now()
            if now >= next_beat:
                self._beat(now, since_beat)
                since_beat = 0
                next_beat = now + timedelta(seconds=self.heartbeat)
            if taken >= self.batch:
                continue
            if until_idle:
                if taken == 0:
                    break
                continue  # no sleeping: what comes due later is for the next run
            if self._stop or (max_loops is not None and loops >= max_loops):
                break
            pause = self._pause(now, next_beat, taken)
            if pause > 0:
                log.debug("sleeping %.3fs", pause)
                sleep(pause)

    def _pause(self, now: datetime, next_beat: datetime, taken: int) -> float:
        """Seconds to sleep after a loop that took ``taken`` (< batch) items."""
        next_due = self.engine.next_due_at()
        if next_due is None:
            pause = self.poll
        elif next_due > now:
            pause = min(self.poll, (next_due - now).total_seconds())
        elif taken:
            return 0.0  # items came due while the batch ran: take them now
        else:
            # due, yet none claimable: other workers hold them (SKIP LOCKED) and will
            # have performed them, or rolled back, by the next look
            pause = self.poll
        return max(0.0, min(pause, (next_beat - now).total_seconds()))

    def _beat(self, now: datetime, done: int) -> None:
        beat = Heartbeat(at=now, done=done, total=self.total, next_due_at=self.engine.next_due_at())
        log.info(
            "heartbeat: %d item(s) since the last beat, %d in all, next due %s",
            beat.done,
            beat.total,
            "never" if beat.next_due_at is None else beat.next_due_at.isoformat(),
        )
        if self.on_heartbeat is not None:
            self.on_heartbeat(beat)


def load_engine_factory(spec: str) -> EngineFactory:
    """The callable named ``"package.module:function"``.

    Raises:
        ValidationError: ``spec`` is not ``module:function``, or names nothing
            callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValidationError(
            f"--engine {spec!r}: write MODULE:FUNCTION, e.g. --engine myapp.crm:make_engine",
            field="engine",
            value=spec,
        )
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise ValidationError(
            f"--engine {spec!r}: cannot load it ({error}); check the module is importable",
            field="engine",
            value=spec,
        ) from error
    if not callable(target):
        raise ValidationError(
            f"--engine {spec!r} is not callable; name a function taking the store",
            field="engine",
            value=spec,
        )
    factory: EngineFactory = target
    return factory


class StopRequests:
    """Where SIGTERM and SIGINT go while a worker starts and runs: a stop asked for
    before the worker exists (while the store opens, the engine is built) is kept and
    passed on as soon as it does, so an early SIGTERM is a clean stop too."""

    def __init__(self) -> None:
        self.requested = False
        self._worker: Worker | None = None

    def attach(self, worker: Worker) -> None:
        """Hand stop requests to ``worker`` from now on (and one already made)."""
        self._worker = worker
        if self.requested:
            worker.request_stop()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        # logging takes locks: the message is left to the loop, which logs the stop
        self.requested = True
        if self._worker is not None:
            self._worker.request_stop()


@contextmanager
def stopping_on_signals(stops: StopRequests) -> Iterator[None]:
    """Send SIGTERM and SIGINT to ``stops``, restoring the old handlers after."""
    wanted = [signal.SIGTERM, signal.SIGINT]
    previous = {signum: signal.signal(signum, stops) for signum in wanted}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def serve(
    store: Store,
    *,
    batch: int = 100,
    poll: float = 5.0,
    heartbeat: float = 60.0,
    until_idle: bool = False,
    engine_factory: EngineFactory | None = None,
    stops: StopRequests | None = None,
    outbox_grace: float = 60.0,
) -> int:
    """Run a worker on ``store`` until SIGTERM or SIGINT (``salesflow worker``); the
    store is closed at the end.

    ``stops`` receives the signals when the caller installed them earlier (the CLI
    does, before it opens the store, with `stopping_on_signals`); without it `serve`
    installs them itself for the time it runs.

    The engine is ``engine_factory(store)`` when given (the host's sink and
    handlers, and ``outbox=True`` for a worker that also publishes what dead
    processes left in the outbox, ``outbox_grace`` seconds on), else a plain
    `Salesflow` whose events go nowhere.

    Returns:
        The exit code: 0 after a clean stop, 1 when `run_due` raised (logged with
        its traceback; a supervisor should restart the worker).
    """
    if stops is None:
        stops = StopRequests()
        with stopping_on_signals(stops):
            return serve(
                store,
                batch=batch,
                poll=poll,
                heartbeat=heartbeat,
                until_idle=until_idle,
                engine_factory=engine_factory,
                stops=stops,
                outbox_grace=outbox_grace,
            )
    try:
        engine = engine_factory(store) if engine_factory is not None else Salesflow(store)
    except BaseException:
        store.close()
        raise
    if engine_factory is None:
        log.warning("no --engine given: events (SendEmailRequested, …) are not delivered")
    try:
        worker = Worker(
            engine, batch=batch, poll=poll, heartbeat=heartbeat, outbox_grace=outbox_grace
        )
    except BaseException:
        engine.close()
        raise
    stops.attach(worker)
    try:
        worker.run(until_idle=until_idle)
    except Exception:  # already logged by Worker.run
        return 1
    finally:
        engine.close()
    return 0
