"""Typed settings: one pydantic model per stage that validates itself, round-trips to JSON and makes its CLI flags.

Rule: a stage's settings are declared once, as the fields of a :class:`Settings` subclass (type, default,
description, constraints, validators). Everything else is derived from those fields: validation (an error is a
:class:`ConfigError` naming the field and the reason), JSON (``to_json``/``from_json``, unknown keys refused), the
command line (:meth:`Settings.add_cli_arguments` / :meth:`Settings.from_cli`: choices from ``Literal`` types,
booleans as ``--x/--no-x``, help from the descriptions with the defaults shown) and, in the Dagster shell, the run
config (:mod:`lpd_pipeline.defs.settings`). Settings are frozen: :meth:`Settings.replace` makes a validated copy.

Values are strict (no ``"yes"`` for a bool, no ``"3"`` for an int); from JSON, whose one number type cannot tell
them apart, ``1.0`` is accepted for an int field (and ``1`` for a float field, as always). No Dagster here.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import types
import typing
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator


class ConfigError(ValueError):
    """A settings value is invalid (the message names the field and the reason)."""


def describe_validation_error(model: type[BaseModel], error: ValidationError) -> str:
    """One line per problem: ``Model.field=value: reason`` (unknown keys listed with the known fields)."""
    name = model.__name__
    unknown = [".".join(map(str, e["loc"])) for e in error.errors() if e["type"] == "extra_forbidden"]
    lines = []
    if unknown:
        lines.append(f"unknown {name} field(s) {unknown}; known fields: {sorted(model.model_fields)}")
    for problem in error.errors():
        if problem["type"] == "extra_forbidden":
            continue
        cause = (problem.get("ctx") or {}).get("error")
        # Our validators' messages verbatim; pydantic's ("Input should be ...") as the second half of a sentence.
        reason = str(cause) if isinstance(cause, Exception) else problem["msg"][:1].lower() + problem["msg"][1:]
        if not problem["loc"]:  # a rule across fields: its message names them
            lines.append(reason if reason.startswith(name) else f"{name}: {reason}")
            continue
        field = ".".join(map(str, problem["loc"]))
        shown = "" if problem["type"] == "missing" else f"={problem['input']!r}"
        lines.append(f"{name}.{field}{shown}: {reason}")
    return "; ".join(lines)


class Settings(BaseModel):
    """Base of every stage's settings: frozen, strict, unknown keys refused, ConfigError on bad values."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(type(self), exc)) from None

    @field_validator("*", mode="before")
    @classmethod
    def _dataclass_fields_from_mappings(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        """A field typed as a dataclass takes that dataclass or a mapping of its fields (JSON, Dagster config);
        either way each of its values is checked as strictly as a field of the settings themselves."""
        annotation = cls.model_fields[info.field_name].annotation
        if not (isinstance(annotation, type) and dataclasses.is_dataclass(annotation)):
            return value
        if isinstance(value, annotation):
            value = dataclasses.asdict(value)
        if not isinstance(value, typing.Mapping):
            raise ValueError(f"must be a {annotation.__name__} or a mapping of its fields")
        checker = _dataclass_checker(annotation)
        try:
            checked = checker(**value)
        except ValidationError as exc:
            raise ValueError(describe_validation_error(checker, exc).replace(f"{checker.__name__}.", "", 1)) from None
        return annotation(**checked.model_dump())

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any):
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(cls, exc)) from None

    # ---- dict / JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (nested dataclasses and models as dicts), as checkpoints and JSON store them."""
        return self.model_dump(mode="python")

    @classmethod
    def from_dict(cls, data: Any):
        """Build from a dict; unknown keys are an error (a typo must not silently fall back to a default)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} settings must be a JSON object, got {type(data).__name__}")
        values = dict(data)
        for name, field in cls.model_fields.items():
            # JSON has one number type: accept 1.0 for an int field (1 for a float field is accepted anyway).
            value = values.get(name)
            if isinstance(value, float) and value.is_integer() and _without_none(field.annotation) is int:
                values[name] = int(value)
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{cls.__name__} settings are not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def validate(self):
        """Validate again (settings are validated when built; kept for callers that check explicitly)."""
        return type(self).from_dict(self.to_dict())

    def replace(self, **changes: Any):
        """A validated copy with ``changes`` applied."""
        return type(self).from_dict({**self.to_dict(), **changes})

    # ---- command line ------------------------------------------------------------------------------
    @classmethod
    def add_cli_arguments(
        cls,
        parser: argparse.ArgumentParser | argparse._ArgumentGroup,
        *,
        exclude: typing.Collection[str] = (),
        default_text: typing.Mapping[str, str] | None = None,
    ) -> None:
        """One flag per field (``--n-epochs`` for ``n_epochs``), default SUPPRESS so an unset flag keeps the
        lower layers (see :meth:`from_cli`). ``default_text`` replaces the shown default of some fields."""
        default_text = default_text or {}
        for name, field in cls.model_fields.items():
            if name in exclude:
                continue
            flag = "--" + name.replace("_", "-")
            shown = default_text.get(name, _shown_default(field))
            help_text = f"{field.description or name} (default {shown})".replace("%", "%%")
            kind, choices = _cli_kind(field.annotation)
            if kind is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                    help=help_text)
            elif kind is None:  # nested values (mappings, lists, dataclasses): JSON on the command line
                parser.add_argument(flag, type=_json_argument, default=argparse.SUPPRESS, metavar="JSON",
                                    help=help_text)
            else:
                parser.add_argument(flag, type=kind, choices=choices, default=argparse.SUPPRESS, help=help_text)

    @classmethod
    def from_cli(cls, args: argparse.Namespace, base: "Settings | None" = None):
        """``base`` (or the defaults) with every flag given on the command line applied, validated."""
        values = base.to_dict() if base is not None else {}
        values.update({name: getattr(args, name) for name in cls.model_fields if hasattr(args, name)})
        return cls.from_dict(values)


# ---- type helpers -----------------------------------------------------------------------------------
@functools.cache
def _dataclass_checker(cls: type) -> type[BaseModel]:
    """A strict pydantic model with the fields (types, defaults) of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: (hints[f.name], f.default if f.default is not dataclasses.MISSING
                 else pydantic.Field(default_factory=f.default_factory)
                 if f.default_factory is not dataclasses.MISSING else ...)
        for f in dataclasses.fields(cls)
    }
    return pydantic.create_model(cls.__name__, __config__=ConfigDict(extra="forbid", strict=True), **fields)


def _without_none(annotation: Any) -> Any:
    """``int`` for ``int | None`` / ``Optional[int]``; the annotation itself otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _cli_kind(annotation: Any) -> tuple[Any, tuple | None]:
    """(argparse type or bool or None for JSON, choices) for a field annotation."""
    annotation = _without_none(annotation)
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), choices
    if annotation in (bool, int, float, str):
        return annotation, None
    return None, None


def _shown_default(field: pydantic.fields.FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    if dataclasses.is_dataclass(default):
        default = dataclasses.asdict(default)
    if isinstance(default, BaseModel):
        default = default.model_dump()
    return repr(default)


def _json_argument(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
