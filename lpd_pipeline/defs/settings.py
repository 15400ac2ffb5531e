"""Dagster config classes generated from the core's settings models: each setting is declared once, in the core.

Rule: :func:`settings_config` turns a pydantic model of a stage's settings (a :class:`lpd_pipeline.config.Settings`
or any ``pydantic.BaseModel`` of plain fields) into a ``dg.Config`` (or ``dg.ConfigurableResource``) base class
with the same fields: type, default and description, so the launchpad shows them with their defaults and choices.
Run-only fields (restart, launcher, ...) are declared in a subclass, beside them. Values are validated once, by
the core model, when :meth:`SettingsConfig.settings` builds it; an invalid value fails the step with a message
naming the field. Fields Dagster's config types cannot express (a dataclass, a nested model) become nested config
classes generated the same way; a ``Mapping`` becomes a ``dict``.

Usage::

    class TrainingRunConfig(settings_config(TrainConfig, exclude=("backbone",))):
        restart: bool = False

    train_config = config.settings(backbone=backbone)   # a validated TrainConfig
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import types
import typing
from typing import Any, ClassVar, Literal

import dagster as dg
import pydantic
from pydantic import BaseModel, ValidationError

from lpd_pipeline.config import ConfigError, describe_validation_error

_PLAIN = (bool, int, float, str)


class _SettingsMixin:
    """What every generated class adds: which core model it mirrors and how to build it."""

    settings_model: ClassVar[type[BaseModel]]
    settings_fields: ClassVar[tuple[str, ...]]

    def settings(self, **fixed: Any) -> Any:
        """The core settings model from these fields, with ``fixed`` values (from the partition, the data...)
        taking precedence. Raises ``dg.Failure`` naming the field when a value is invalid."""
        model = type(self).settings_model
        values = {name: _plain(getattr(self, name)) for name in type(self).settings_fields}
        values.update(fixed)
        try:
            return model.model_validate(values)
        except ConfigError as exc:
            raise dg.Failure(description=str(exc)) from None
        except ValidationError as exc:
            raise dg.Failure(description=describe_validation_error(model, exc)) from None


def settings_config(
    model: type[BaseModel],
    *,
    exclude: typing.Collection[str] = (),
    base: type[dg.Config] = dg.Config,
    name: str | None = None,
) -> type:
    """A ``base`` subclass (``dg.Config`` or ``dg.ConfigurableResource``) with one field per field of ``model``
    (except ``exclude``), and ``settings(**fixed)`` that builds and validates the ``model``."""
    unknown = set(exclude) - set(model.model_fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no field(s) {sorted(unknown)} to exclude")
    fields = {}
    for field_name, field in model.model_fields.items():
        if field_name in exclude:
            continue
        default = field.get_default(call_default_factory=True)
        annotation = _config_annotation(field.annotation, default, f"{model.__name__}.{field_name}")
        fields[field_name] = (annotation, _config_field(default, field.description))
    generated = pydantic.create_model(
        name or f"{model.__name__}Config",
        __base__=(base, _SettingsMixin),
        __doc__=model.__doc__,
        __module__=model.__module__,
        **fields,
    )
    generated.settings_model = model
    generated.settings_fields = tuple(fields)
    return generated


def _config_field(default: Any, description: str | None) -> Any:
    if isinstance(default, BaseModel) or dataclasses.is_dataclass(default):
        return pydantic.Field(default_factory=lambda: _plain(default), description=description)
    if isinstance(default, (dict, list)) or isinstance(default, collections.abc.Mapping):
        frozen = copy.deepcopy(dict(default) if isinstance(default, collections.abc.Mapping) else default)
        return pydantic.Field(default_factory=lambda: copy.deepcopy(frozen), description=description)
    return pydantic.Field(default=default, description=description)


def _config_annotation(annotation: Any, default: Any, where: str) -> Any:
    """The annotation Dagster's config system takes for a model field's annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _PLAIN or annotation is Any or origin is Literal:
        return annotation
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and len(args) == 2:
            return _config_annotation(inner[0], default, where) | None
    if origin in (dict, collections.abc.Mapping, typing.Mapping) and args:
        return dict[args[0], _config_annotation(args[1], None, where)]
    if origin in (list, tuple, collections.abc.Sequence) and args and (origin is not tuple or len(args) == 1
                                                                        or args[-1] is Ellipsis):
        return list[_config_annotation(args[0], None, where)]
    if isinstance(annotation, type) and (issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)):
        return _nested_config(annotation, default, where)
    raise TypeError(f"{where}: Dagster config cannot express the type {annotation!r}; use plain fields "
                    f"(bool, int, float, str, Literal, list, dict, a dataclass or model of those)")


def _nested_config(cls: type, default: Any, where: str) -> type[dg.Config]:
    """A dg.Config with the fields of a dataclass or model (defaults from ``default`` when it is an instance)."""
    if issubclass(cls, BaseModel):
        items = [(n, f.annotation, f.get_default(call_default_factory=True), f.description)
                 for n, f in cls.model_fields.items()]
    else:
        hints = typing.get_type_hints(cls)
        items = [(f.name, hints[f.name], _dataclass_default(f), None) for f in dataclasses.fields(cls)]
    values = _plain(default) if isinstance(default, cls) else {}
    fields = {
        name: (_config_annotation(annotation, values.get(name, value), f"{where}.{name}"),
               _config_field(values.get(name, value), description))
        for name, annotation, value, description in items
    }
    return pydantic.create_model(f"{cls.__name__}Config", __base__=dg.Config, __doc__=cls.__doc__, **fields)


def _dataclass_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return ...  # pydantic's marker of a required field


def _plain(value: Any) -> Any:
    """Plain Python values: nested configs, models and dataclasses as dicts."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, collections.abc.Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
