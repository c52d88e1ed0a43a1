"""Command-line options generated from `RunConfig`, so a setting is declared once.

`@config_options()` adds one `--name` option per flag-able setting to a command whose function
takes `**settings`; the command receives the options that were given (None means 'not given',
so the environment and the settings file can still decide).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.config import SETTINGS, CacheMode, RunConfig, build_config, field_type

_DEFAULTS = RunConfig()


def _option(name: str) -> inspect.Parameter:
    setting = SETTINGS[name]
    help_text = setting.help + (f" Environment: {setting.env}." if setting.env else "")
    default = getattr(_DEFAULTS, name)
    shown = False if default is None or setting.affects == "secret" else str(default)
    flag = f"--{name.replace('_', '-')}"
    names = f"{flag}/--no-{flag[2:]}" if field_type(name) is bool else flag
    option = typer.Option(names, help=help_text, show_default=shown)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[field_type(name) | None, option])


def config_options(*, skip: frozenset[str] = frozenset()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one option per setting of `RunConfig` (except `skip`)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command, eval_str=True)
        params = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        params += [_option(name) for name, s in SETTINGS.items() if s.flag and name not in skip]

        @functools.wraps(command)
        def wrapper(**given: Any) -> Any:
            return command(**given)

        wrapper.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def cache_mode_flag(offline: bool = False, refresh: bool = False, no_cache: bool = False) -> CacheMode | None:
    """The cache mode chosen by --offline / --refresh / --no-cache (at most one), or None."""
    from pipeline.errors import ConfigError

    chosen = [mode for mode, on in ((CacheMode.OFFLINE, offline), (CacheMode.REFRESH, refresh),
                                    (CacheMode.OFF, no_cache)) if on]
    if len(chosen) > 1:
        raise ConfigError("choose at most one of --offline, --refresh, --no-cache")
    return chosen[0] if chosen else None


def config_from(settings: dict[str, Any], config_file: Path | None, cache_mode: CacheMode | None) -> RunConfig:
    """The run configuration from a command's setting options, its --config file and cache flags."""
    given = {name: value for name, value in settings.items() if name in SETTINGS}
    if cache_mode is not None:
        given["cache_mode"] = cache_mode
    return build_config(given, config_file)
