"""What every stage of the engine is built on: per-stream columns declared once.

A detector keeps its state in numpy arrays with one row per stream (slot), so a micro-batch
of many streams is scored in a few vectorized passes. It declares those arrays as
:class:`Column` attributes of its class, and :class:`PerStream` gives it the rest: the
arrays made empty, grown by doubling as streams arrive, and the state a checkpoint saves
and loads (every saved column, and the state of every part that is itself a
:class:`PerStream`, such as the threshold state machine a derived detector feeds)::

    class Silence(PerStream):
        last_seen = Column(np.int64, NEVER)
        watched = Column(np.bool_, False, saved=False)  # configuration, rebuilt from rules

A :class:`Detector` turns one kind of rule into conditions: it is made from its rule
(``rule.detector()``), and each stream the rule watches is configured from that patient's
version of the rule. Every :class:`Stage` offers a configured example of itself, which the
shared contract test (tests/analytics/detectors/test_contract.py) finds on its own and
holds to the same promises: batching does not change the output, a restored state
continues exactly, a reading seen twice counts once, empty and all-NaN batches are harmless.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings

S = TypeVar("S", bound=np.generic)
R = TypeVar("R")
MIN_ROWS = 1024
"""Arrays start this large when the first stream arrives, then double."""


class Column(Generic[S]):
    """One per-stream array, declared in the class body. ``width`` gives each stream a row
    of that many values (a number, or the name of an attribute the instance sets before
    calling ``PerStream.__init__``); ``saved=False`` marks configuration, which is rebuilt
    from the rules at start instead of checkpointed, so a changed rule takes effect."""

    def __init__(
        self, dtype: type[S], fill: Any, *, saved: bool = True, width: int | str | None = None
    ) -> None:
        self.dtype = dtype
        self.fill = fill
        self.saved = saved
        self.width = width
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Column[S]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> npt.NDArray[S]: ...
    def __get__(self, instance: object | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance.__dict__[self.name]

    def __set__(self, instance: object, value: npt.NDArray[S]) -> None:
        instance.__dict__[self.name] = value

    def empty(self, instance: object, rows: int) -> npt.NDArray[S]:
        width = getattr(instance, self.width) if isinstance(self.width, str) else self.width
        shape = (rows,) if width is None else (rows, width)
        return np.full(shape, self.fill, dtype=self.dtype)


class PerStream:
    """Arrays of one row per stream, declared as :class:`Column` attributes."""

    _columns: ClassVar[tuple[Column[Any], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Column[Any]] = {}
        for klass in reversed(cls.__mro__):
            found |= {k: v for k, v in vars(klass).items() if isinstance(v, Column)}
        cls._columns = tuple(found.values())

    def __init__(self) -> None:
        for column in self._columns:
            setattr(self, column.name, column.empty(self, 0))

    @property
    def rows(self) -> int:
        return len(getattr(self, self._columns[0].name)) if self._columns else 0

    def grow(self, rows: int) -> None:
        """Room for ``rows`` streams; capacity at least doubles, so adding streams one by
        one costs amortized constant time."""
        have = self.rows
        if rows <= have:
            return
        extra = max(rows, 2 * have, MIN_ROWS) - have
        for column in self._columns:
            grown = np.concatenate([getattr(self, column.name), column.empty(self, extra)])
            setattr(self, column.name, grown)

    def parts(self) -> dict[str, PerStream]:
        """Attributes that keep per-stream state of their own."""
        return {name: value for name, value in vars(self).items() if isinstance(value, PerStream)}

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """What a checkpoint keeps: the saved columns, and each part's under its name."""
        state = {c.name: getattr(self, c.name) for c in self._columns if c.saved}
        for name, part in self.parts().items():
            state |= {f"{name}.{key}": value for key, value in part.state().items()}
        return state

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        """Take back what :meth:`state` gave, into an instance configured the same way."""
        saved = [c for c in self._columns if c.saved]
        if saved:
            rows = len(state[saved[0].name])
            self.grow(rows)
            for column in saved:
                getattr(self, column.name)[:rows] = state[column.name]
        for name, part in self.parts().items():
            prefix = f"{name}."
            part.restore({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})


@dataclass(frozen=True, slots=True)
class Place:
    """Where a stream belongs: its patient's row in the engine, and its metric's id."""

    patient: int
    metric: int


class Stage(PerStream, abc.ABC):
    """A step of the engine over micro-batches (the artefact marker, the stale-stream
    clock, and every detector)."""

    @classmethod
    @abc.abstractmethod
    def for_contract(cls) -> Self:
        """A configured example over streams 0-5, for the shared contract test."""

    @abc.abstractmethod
    def contract_output(self, batch: Readings) -> list[tuple[int, int, str]]:
        """Process the batch; what it reports or marks, as (stream, time, what)."""


class Detector(Stage, Generic[R]):
    """One rule over many streams, each configured with its patient's version of the rule."""

    rule: str

    @abc.abstractmethod
    def configure(self, stream: int, rule: R, place: Place) -> None: ...

    @abc.abstractmethod
    def score(self, batch: Readings) -> list[Event]:
        """Advance the batch's streams; events in (stream, time) order."""

    def contract_output(self, batch: Readings) -> list[tuple[int, int, str]]:
        return [(e.stream, e.time, str(e.kind)) for e in self.score(batch)]
