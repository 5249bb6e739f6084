"""The format kit: does a format render every hostile snapshot, and keep its promises?

Each check renders the catalogue of :mod:`metricache_conformance.snapshot_catalogue`
and fails with the first snapshot that breaks a promise:

* ``format.declaration``: a name, a ``content_type`` whose media type is among the
  format's ``media_types``, media types of the form ``type/subtype``, an extension;
* ``format.renders``: no snapshot makes it raise;
* ``format.bytes``: it returns ``bytes``, in the charset its content type names;
* ``format.deterministic``: the same snapshot, and an equal one built apart, give
  the same bytes;
* ``format.parse_back``: with a parse-back hook, the bytes read back as the samples
  the snapshot holds, value for value (NaN included) and label for label.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable, Sequence

from metricache.errors import FormatNotFound
from metricache.formats import Format, get_format
from metricache.snapshot import Snapshot

from metricache_conformance.checking import CheckFailed, expect, short
from metricache_conformance.kit import KitCheck, KitSuite, NotApplicable
from metricache_conformance.results import Result
from metricache_conformance.snapshot_catalogue import FlatSample, flat_samples, hostile_snapshots

__all__ = ["FORMAT_CHECKS", "FormatSuite", "ParseBack", "load_format"]

ParseBack = Callable[[bytes], Iterable[FlatSample]]
"""Read a format's bytes back as the samples they hold."""

_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def load_format(name: str) -> Format:
    """Return the format called ``name``, or built from ``package.module:Class``."""
    if ":" not in name:
        return get_format(name)
    module_name, _, attribute = name.partition(":")
    try:
        found: object = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise FormatNotFound(f"cannot load the format {name!r}: {exc}") from None
    if isinstance(found, type) and issubclass(found, Format):
        return found()
    if isinstance(found, Format):
        return found
    raise FormatNotFound(f"{name!r} is not a metricache.formats.Format")


class FormatSuite(KitSuite):
    """The format kit, run against one format (a :class:`Format`, a name or an import path).

    ``parse_back`` reads the format's bytes back as :class:`FlatSample` objects; without
    it, ``format.parse_back`` is a named skip.
    """

    kind = "format"

    def __init__(self, format: Format | str, *, parse_back: ParseBack | None = None) -> None:
        self.format = format if isinstance(format, Format) else load_format(format)
        self.parse_back = parse_back
        self.results: list[Result] = []

    @property
    def name(self) -> str:
        """The format's name."""
        return self.format.name or type(self.format).__name__

    def rendered(self) -> dict[str, bytes]:
        """Render every snapshot of the catalogue; raise CheckFailed naming one that raises."""
        out = {}
        for label, snapshot in hostile_snapshots().items():
            out[label] = self.render(label, snapshot)
        return out

    def render(self, label: str, snapshot: Snapshot) -> bytes:
        """Render one snapshot; a raise becomes a failure naming the snapshot."""
        try:
            payload: bytes = self.format.render(snapshot)
        except Exception as exc:
            raise CheckFailed(
                f"rendering the {label!r} snapshot raised {type(exc).__name__}: {exc}"
            ) from exc
        return payload


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"')
    return None


def declaration(suite: FormatSuite) -> None:
    """It has a name, a content type among its media types, and an extension."""
    fmt = suite.format
    expect(
        isinstance(fmt.name, str) and bool(re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", fmt.name)),
        f"its name {fmt.name!r} is not a lowercase word (what users pass to --format)",
    )
    for media in fmt.media_types:
        expect(
            bool(_MEDIA_TYPE.fullmatch(media)),
            f"its media type {media!r} is not a lowercase type/subtype without parameters",
        )
    media_type = fmt.content_type.split(";")[0].strip().lower()
    expect(
        bool(_MEDIA_TYPE.fullmatch(media_type)),
        f"its content type {fmt.content_type!r} does not start with a type/subtype",
    )
    expect(
        media_type in fmt.media_types,
        f"its content type {fmt.content_type!r} is not among its media types "
        f"{fmt.media_types!r}: a client asking for what it is sent would get 406",
    )
    if (charset := _charset(fmt.content_type)) is not None:
        try:
            "".encode(charset)
        except LookupError:
            raise CheckFailed(f"its content type names an unknown charset {charset!r}") from None
    expect(
        bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", fmt.extension)),
        f"its extension {fmt.extension!r} is not a file name extension (no dot, no slash)",
    )


def renders(suite: FormatSuite) -> None:
    """Every hostile snapshot renders without an exception."""
    suite.rendered()


def gives_bytes(suite: FormatSuite) -> None:
    """It returns bytes, encoded in the charset its content type names."""
    charset = _charset(suite.format.content_type)
    for label, payload in suite.rendered().items():
        expect(
            type(payload) is bytes,
            f"rendering the {label!r} snapshot returned {type(payload).__name__}, not bytes",
        )
        if charset is None:
            continue
        try:
            payload.decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            raise CheckFailed(
                f"the {label!r} snapshot rendered to bytes that are not {charset}, as the "
                f"content type says: {exc}"
            ) from None


def deterministic(suite: FormatSuite) -> None:
    """The same snapshot, or an equal one built apart, renders to the same bytes."""
    apart = hostile_snapshots()  # fresh objects, equal to the first ones
    for label, snapshot in hostile_snapshots().items():
        payload = suite.render(label, snapshot)
        for what, again in (
            ("rendering it again", suite.render(label, snapshot)),
            ("an equal snapshot built apart", suite.render(label, apart[label])),
        ):
            if again != payload:
                at = next(
                    (i for i, (a, b) in enumerate(zip(payload, again)) if a != b),
                    min(len(payload), len(again)),
                )
                raise CheckFailed(
                    f"the {label!r} snapshot and {what} gave different bytes (from byte "
                    f"{at}: {short(payload[at:])}, then {short(again[at:])})"
                )


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _describe(sample: FlatSample) -> str:
    labels = ", ".join(f"{k}={v!r}" for k, v in sorted(sample.labels.items()))
    return f"{sample.name}{{{labels}}}"


def compare_samples(expected: Sequence[FlatSample], parsed: Sequence[FlatSample]) -> str | None:
    """Describe the first difference between two sets of samples (None: the same)."""
    want = {s.key(): s for s in expected}
    got: dict[object, FlatSample] = {}
    for sample in parsed:
        if sample.key() in got:
            return f"{_describe(sample)} appears twice"
        got[sample.key()] = sample
    for key, sample in want.items():
        found = got.get(key)
        if found is None:
            return f"{_describe(sample)} is missing"
        if not _same(found.value, sample.value):
            return f"{_describe(sample)} reads back as {found.value!r}, not {sample.value!r}"
    extra = [got[k] for k in got if k not in want]
    if extra:
        return f"{_describe(extra[0])} was never in the snapshot"
    return None


def parses_back(suite: FormatSuite) -> None:
    """With a parse-back hook: every sample reads back, labels and values exact."""
    if suite.parse_back is None:
        raise NotApplicable("no parse-back hook given (define parse_back)")
    for label, payload in suite.rendered().items():
        try:
            parsed = list(suite.parse_back(payload))
        except Exception as exc:
            raise CheckFailed(
                f"the bytes of the {label!r} snapshot do not parse back: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        difference = compare_samples(flat_samples(hostile_snapshots()[label]), parsed)
        if difference is not None:
            raise CheckFailed(
                f"the {label!r} snapshot does not read back as it was rendered: {difference}"
            )


FORMAT_CHECKS: list[KitCheck[FormatSuite]] = [
    KitCheck("format.declaration", declaration),
    KitCheck("format.renders", renders),
    KitCheck("format.bytes", gives_bytes),
    KitCheck("format.deterministic", deterministic),
    KitCheck("format.parse_back", parses_back),
]
"""The checks of the format kit, in the order they run."""

FormatSuite.checks = FORMAT_CHECKS
