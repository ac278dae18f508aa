"""What each metric column of a step row means: its unit, display scale, direction and label.

The step record (:mod:`radioactive.records`) stores every score in its own unit: Dice and NSD
as fractions in [0, 1], surface distances in mm, effort as degrees of freedom and seconds. The
report shows Dice and NSD ×100. Everything that formats, scales or ranks a metric column reads
it from here, never from the column's name.

>>> meta("dice").scale, meta("dice").higher_is_better, meta("hd95_mm").unit
(100.0, True, 'mm')
>>> meta("nsd").axis_label("mean final")
'mean final NSD (×100)'

Only the standard library is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "METRICS",
    "MetricMeta",
    "display_scale",
    "higher_is_better",
    "lower_is_better",
    "meta",
]


@dataclass(frozen=True)
class MetricMeta:
    """The metadata of one metric column.

    ``unit`` is the unit of the stored value (``""`` for a dimensionless fraction or count),
    ``scale`` the factor applied for display (100 for fractions shown as percentages),
    ``higher_is_better`` the ranking direction, ``label`` the short human name.
    """

    name: str
    label: str
    unit: str
    scale: float
    higher_is_better: bool
    doc: str

    def display(self, value: float) -> float:
        """``value`` in display units (× :attr:`scale`)."""
        return float(value) * self.scale

    @property
    def display_unit(self) -> str:
        """How displayed values read: ``"×100"`` for a scaled fraction, else the unit."""
        if self.scale != 1.0:
            return f"×{self.scale:g}"
        return self.unit

    def axis_label(self, prefix: str = "") -> str:
        """A plot or table label: ``"<prefix> <label> (<display unit>)"``."""
        text = f"{prefix} {self.label}".strip()
        return f"{text} ({self.display_unit})" if self.display_unit else text


def _m(name: str, label: str, unit: str, scale: float, higher: bool, doc: str) -> MetricMeta:
    return MetricMeta(name, label, unit, scale, higher, doc)


_ALL = (
    _m("dice", "Dice", "", 100.0, True, "Dice coefficient, a fraction in [0, 1]"),
    _m("nsd", "NSD", "", 100.0, True, "normalised surface Dice at the tolerance, in [0, 1]"),
    _m("hd95_mm", "HD95", "mm", 1.0, False, "95th-percentile Hausdorff distance"),
    _m("assd_mm", "ASSD", "mm", 1.0, False, "average symmetric surface distance"),
    _m("dof", "DoF", "", 1.0, False, "degrees of freedom of one step's prompts"),
    _m("seconds", "user time", "s", 1.0, False, "estimated human effort of one step"),
    _m("cum_dof", "interactions (DoF)", "", 1.0, False, "degrees of freedom up to the step"),
    _m("cum_seconds", "user time", "s", 1.0, False, "estimated human seconds up to the step"),
    _m("encoder_s", "encoder time", "s", 1.0, False, "model encoder wall time of the step"),
    _m("decoder_s", "decoder time", "s", 1.0, False, "model decoder wall time of the step"),
    _m("wall_s", "wall time", "s", 1.0, False, "wall time of the step"),
    _m("peak_mem_mb", "peak memory", "MiB", 1.0, False, "peak resident memory of the worker"),
)

METRICS: Mapping[str, MetricMeta] = MappingProxyType({m.name: m for m in _ALL})
"""Every metric column of the step record, by column name."""


def meta(name: str) -> MetricMeta:
    """The metadata of metric column ``name``; ``KeyError`` (naming the known ones) otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(
            f"no metric column {name!r}; known metric columns: {', '.join(METRICS)}"
        ) from None


def display_scale(name: str) -> float:
    """The display factor of ``name`` (1 for a column that is not a known metric)."""
    known = METRICS.get(name)
    return known.scale if known is not None else 1.0


def higher_is_better(name: str) -> bool:
    """The ranking direction of ``name`` (higher is better for a column not known here)."""
    known = METRICS.get(name)
    return known.higher_is_better if known is not None else True


def lower_is_better() -> frozenset[str]:
    """The metric columns ranked ascending."""
    return frozenset(m.name for m in _ALL if not m.higher_is_better)
