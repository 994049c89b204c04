"""Option types every ``ops`` command uses for numbers, sizes, durations and the metrics file.

One mechanism for bad input: the value is checked while the command line is parsed, before any
work, and a bad one ends in ONE line that names the option and the allowed range, exit 2::

    ops maintain reindex: error: --min-bloat: 'abc' is not a number from 0 to 100

click's own FloatRange lets NaN through (every comparison with NaN is false) and says
"'abc' is not a valid float range" without the range; these types refuse NaN and infinities,
and always say what is allowed. Declare a numeric option with ``number(...)``, a size with
``size(...)``, a duration with ``duration(...)``; ``tests/test_bad_input.py`` checks that no
command declares a bare int/float option.
"""

from __future__ import annotations

import math
from typing import Any

import click
import typer

from ops.errors import UsageError

MB = 1024**2
PB = 1024**5


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Number(click.ParamType):
    """A finite int or float within [low, high] (or (low, high] when ``low_open``)."""

    def __init__(self, low: float, high: float, *, integer: bool = False, low_open: bool = False) -> None:
        self.low, self.high, self.integer, self.low_open = low, high, integer, low_open
        self.name = "integer" if integer else "number"

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        if self.low_open:
            return f"{kind} above {_num(self.low)} and at most {_num(self.high)}"
        return f"{kind} from {_num(self.low)} to {_num(self.high)}"

    def get_metavar(self, param: click.Parameter) -> str:
        return "INTEGER" if self.integer else "NUMBER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        try:
            number: float = int(text) if self.integer else float(text)
        except ValueError:
            self.fail(f"{text!r} is not {self.describe()}", param, ctx)
        if not self.ok(number):
            self.fail(f"{text!r} is not {self.describe()}", param, ctx)
        return number

    def ok(self, number: float) -> bool:
        if not math.isfinite(number) or number > self.high:
            return False
        return number > self.low if self.low_open else number >= self.low


class Parsed(click.ParamType):
    """A size or duration parsed by ``ops.maintain.units``, then bounded like ``Number``."""

    unit_hint = ""

    def __init__(self, low: float, high: float, *, low_open: bool = False) -> None:
        self.bounds = Number(low, high, low_open=low_open)

    def parse(self, text: str) -> float:
        raise NotImplementedError

    def show(self, value: float) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        low, high = self.show(self.bounds.low), self.show(self.bounds.high)
        if self.bounds.low_open:
            return f"a {self.name} above {low} and at most {high} ({self.unit_hint})"
        return f"a {self.name} from {low} to {high} ({self.unit_hint})"

    def get_metavar(self, param: click.Parameter) -> str:
        return self.name.upper()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        try:
            parsed = self.parse(text)
        except UsageError:
            self.fail(f"{text!r} is not {self.describe()}", param, ctx)
        if not self.bounds.ok(parsed):
            self.fail(f"{text!r} is not {self.describe()}", param, ctx)
        return parsed


class Size(Parsed):
    """Bytes from '10MB', '1.5 GB', '8kB' or a bare number of bytes (as pg_size_bytes reads them)."""

    name = "size"
    unit_hint = "bytes, kB, MB, GB, TB; e.g. 10MB"

    def parse(self, text: str) -> float:
        from ops.maintain.units import parse_size

        return parse_size(text)

    def show(self, value: float) -> str:
        for unit, factor in (("PB", PB), ("TB", 1024**4), ("GB", 1024**3), ("MB", MB), ("kB", 1024)):
            if value >= factor and value % factor == 0:
                return f"{value // factor:g}{unit}"
        return f"{value:g}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return int(super().convert(value, param, ctx))


class Duration(Parsed):
    """Seconds from '90', '90s', '30m', '2h', '1h30m', '7d'."""

    name = "duration"
    unit_hint = "seconds or d, h, m, s, ms; e.g. 30m, 1h30m"

    def parse(self, text: str) -> float:
        from ops.maintain.units import parse_duration

        return parse_duration(text)

    def show(self, value: float) -> str:
        if value == 0:
            return "0"
        for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if value >= seconds and value % seconds == 0:
                return f"{value // seconds:g}{unit}"
        return f"{value:g}s"


class MetricsFile(click.ParamType):
    """A path where a Prometheus textfile can be written: see ``ops.maintain.metrics.check_path``."""

    name = "path"

    def get_metavar(self, param: click.Parameter) -> str:
        return "PATH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ops.maintain.metrics import check_path

        try:
            check_path(str(value), flag="")
        except UsageError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


def _with_range(help: str, kind: Number | Parsed) -> str:
    return f"{help} [{kind.describe()}]"


def number(*flags: str, low: float, high: float, help: str, integer: bool = False, low_open: bool = False) -> Any:
    """A typer option for a bounded, finite number; its help shows the range."""
    kind = Number(low, high, integer=integer, low_open=low_open)
    return typer.Option(*flags, click_type=kind, help=_with_range(help, kind))


def size(*flags: str, help: str, default: str | None = None, low: float = 0, high: float = 1024 * PB) -> Any:
    """A typer option for a size in bytes (int), written as '10MB'; ``default`` is how the help shows it."""
    kind = Size(low, high)
    return typer.Option(*flags, click_type=kind, help=_with_range(help, kind), show_default=default or True)


def duration(
    *flags: str,
    help: str,
    default: str | None = None,
    low: float = 0,
    high: float = 365 * 86400,
    low_open: bool = False,
) -> Any:
    """A typer option for a duration in seconds (float), written as '30m'; ``default`` is how the help shows it."""
    kind = Duration(low, high, low_open=low_open)
    return typer.Option(*flags, click_type=kind, help=_with_range(help, kind), show_default=default or True)


def metrics_file(help: str) -> Any:
    """``--metrics-file``: checked to be a writable regular-file path while the command line is read."""
    return typer.Option("--metrics-file", click_type=MetricsFile(), help=help)


def check_order(low_flag: str, low: float, high_flag: str, high: float) -> None:
    """A warning threshold must not be above its critical one."""
    if high < low:
        raise UsageError(f"{high_flag} ({high:g}) must not be below {low_flag} ({low:g})")


def bad_parameter_message(exc: click.BadParameter) -> str:
    """'--min-bloat: 'abc' is not a number from 0 to 100': the option first, then what is allowed."""
    param = exc.param
    if type(exc) is not click.BadParameter or param is None:
        return exc.format_message()
    name = param.opts[0] if isinstance(param, click.Option) and param.opts else param.human_readable_name
    return f"{name}: {exc.message}"


def check_command_line(command: list[str], args: list[str]) -> None:
    """Parse ``ops <command> <args>`` as the CLI would, without running it: the same option types,
    so an inventory's extra flags for a cron job fail at deploy time, not on the first Sunday."""
    from typer.main import get_command

    from ops.cli import app

    cmd: click.Command = get_command(app)
    for name in command:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    try:
        cmd.make_context(" ".join(["ops", *command]), list(args), resilient_parsing=False)
    except click.BadParameter as exc:
        raise UsageError(bad_parameter_message(exc)) from None
    except click.ClickException as exc:
        raise UsageError(exc.format_message()) from None
