"""Loading an experiment: YAML files (strict: no duplicate keys), mappings and the quick form.

Every problem is a :class:`~radioactive.runner.schema.ConfigError` that lists each one as
``location: message`` (with "did you mean" for a misspelt key).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from radioactive.prompts.presets import PRESETS
from radioactive.runner.schema import ConfigError, ExperimentConfig

__all__ = ["FIX_HINT", "config_from_dict", "load_config", "quick_config"]

FIX_HINT = (
    "correct the entries listed above; every key of the file is one of ExperimentConfig's "
    "fields (radioactive.runner.config), and the files in configs/ are complete examples"
)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (a silent overwrite
    otherwise)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _schema_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (for listing its valid keys)."""
    cls: Any = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
        field = cls.model_fields.get(part)
        if field is None:
            return None
        cls = _unwrap(field.annotation)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """``list[X] | None`` -> ``X``: the model class inside an annotation, if any."""
    for _ in range(4):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) is dict or not args:
            return None
        tp = args[0]
    return None


def _format_error(err: Any) -> str:
    loc = tuple(err.get("loc", ()))
    where = ".".join(str(p) for p in loc) or "(top level)"
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    msg = msg[:1].lower() + msg[1:]
    if err.get("type") == "extra_forbidden" and loc:
        schema = _schema_at(loc)
        if schema is not None:
            valid = list(schema.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            msg += f" ({hint}valid keys: {', '.join(valid)})"
    elif loc and err.get("type") != "missing" and "input" in err:
        shown = repr(err["input"])
        msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return f"{where}: {msg}"


def _validation_problem(exc: ValidationError) -> str:
    lines = [_format_error(e) for e in exc.errors()]
    n = len(lines)
    head = f"{n} problem{'s' if n != 1 else ''} in the experiment configuration:"
    return "\n".join([head, *(f"  {line}" for line in lines)])


def config_from_dict(data: Any, *, source: str | Path | None = None) -> ExperimentConfig:
    """Validate a mapping (e.g. parsed YAML) as an :class:`ExperimentConfig`.

    Raises:
        ConfigError: listing every problem as ``location: message``; ``source`` names the file.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of settings at the top level, got {type(data).__name__}",
            path=source,
            fix="start the file with keys such as `datasets:`, `models:` and `prompters:`",
        )
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_problem(exc), path=source, fix=FIX_HINT) from None
    except ConfigError as exc:
        raise ConfigError(exc.problem, path=source, fix=exc.fix) from None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file.

    Relative paths in the file (``output``, ``cache_dir``, dataset paths that are not recipe
    names, a model's ``checkpoint`` option) are relative to the file's folder.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid YAML (the message gives line
            and column), or does not validate (every problem listed as ``location: message``).
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "experiment file not found",
            path=file,
            fix="check the path (the files in configs/ are examples to copy)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the experiment file ({exc})", path=file) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no code
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(
            f"invalid YAML at {where}{problem}",
            path=file,
            fix="repair the YAML syntax there (indentation, a missing ':' or an unclosed quote "
            "or bracket are the usual causes)",
        ) from None
    if data is None:
        raise ConfigError(
            "the experiment file is empty",
            path=file,
            fix="give at least `datasets:`, `models:` and `prompters:` (see configs/)",
        )
    return config_from_dict(data, source=file).with_base_dir(file.parent.resolve())


def quick_config(
    dataset: str,
    model: str,
    prompter: str,
    *,
    user: str | None = None,
    steps: int = 0,
    seed: int = 0,
    output: str | Path | None = None,
    model_options: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """The one-line form of the CLI: one dataset, one model, one prompting strategy, one seed.

    ``prompter`` may also name a preset (e.g. ``"cvpr25"``). With a ``user``, ``steps=0`` means
    the default number of corrections (``stopping.max_steps``). Paths stay relative to the
    current directory.

    Raises:
        ConfigError: as :func:`load_config`.
    """
    data: dict[str, Any] = {
        "name": "quick",
        "datasets": [{"name": str(dataset)}],
        "models": [{"name": model, "options": dict(model_options or {})}],
        "seeds": [seed],
    }
    if output is not None:
        data["output"] = str(output)
    if user is None and prompter in PRESETS:
        entry: dict[str, Any] = {"preset": prompter}
        if steps:
            entry["steps"] = steps
        data["interactive"] = [entry]
    elif user is None:
        data["prompters"] = [prompter]
    else:
        entry = {"prompter": prompter, "user": user}
        if steps:
            entry["steps"] = steps
        data["interactive"] = [entry]
    return config_from_dict(data)
