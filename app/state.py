"""View state kept in the URL query parameters.

Every control that defines a view (run, filters, sample, layer, head,
normalisation, time axis) reads its starting value from `st.query_params` and
writes its current value back, so a copied link reopens the same view. The
sidebar navigation drops query parameters when it changes pages, so the last
value of each parameter is also remembered in the session and used when the
URL has none. A value equal to the default is removed from the URL to keep
links short.
"""

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

_MEMORY_PREFIX = "_view_state:"


def read(name: str) -> str | None:
    """Return the parameter from the URL, else the value remembered in the session."""
    if name in st.query_params:
        return st.query_params[name]
    return st.session_state.get(_MEMORY_PREFIX + name)


def read_list(name: str) -> list[str] | None:
    """Return a repeated parameter (`?signer=a&signer=b`) from the URL or the session."""
    if name in st.query_params:
        return st.query_params.get_all(name)
    remembered = st.session_state.get(_MEMORY_PREFIX + name)
    return list(remembered) if remembered is not None else None


def write(name: str, value: str | list[str] | None, default: str | list[str] | None = None) -> None:
    """Store the parameter in the URL and the session; a default value leaves the URL."""
    st.session_state[_MEMORY_PREFIX + name] = value
    if value is None or value == default:
        if name in st.query_params:
            del st.query_params[name]
        return
    if st.query_params.get_all(name) != (value if isinstance(value, list) else [value]):
        st.query_params[name] = value


def forget(name: str) -> None:
    """Drop a parameter from the URL and the session (its control then starts at the default)."""
    st.session_state.pop(_MEMORY_PREFIX + name, None)
    if name in st.query_params:
        del st.query_params[name]


def select(
    label: str,
    options: Sequence[Any],
    name: str,
    default: Any = None,
    *,
    to_param: Callable[[Any], str] = str,
    format_func: Callable[[Any], str] = str,
    kind: str = "selectbox",
    container: Any = None,
    **kwargs: Any,
) -> Any:
    """Show a single-choice widget whose value lives in the query parameter `name`.

    A parameter that names no option falls back to `default` (or the first
    option). `to_param` turns an option into its URL text. `kind` is one of
    `selectbox`, `radio`, `select_slider` or `segmented_control`.
    """
    if not options:
        raise ValueError(f"no options for {label!r}")
    if kind not in _CHOICE_WIDGETS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(_CHOICE_WIDGETS)}")
    options = list(options)
    by_param = {to_param(option): option for option in options}
    default = options[0] if default is None or to_param(default) not in by_param else default
    current = by_param.get(read(name) or "", default)
    host = container if container is not None else st
    key = _widget_key(name, lambda stored: stored is not None and to_param(stored) in by_param)

    # the starting value goes in as the widget's default, never through session state,
    # because a widget's session-state value does not survive a page switch
    starting = {
        "selectbox": {"index": options.index(current)},
        "radio": {"index": options.index(current)},
        "select_slider": {"value": current},
        "segmented_control": {"default": current, "selection_mode": "single"},
    }[kind]
    widget = getattr(host, kind)
    value = widget(label, options, format_func=format_func, key=key, **starting, **kwargs)
    if value is None:
        value = default
    write(name, to_param(value), to_param(default))
    return value


_CHOICE_WIDGETS = ("selectbox", "radio", "select_slider", "segmented_control")


def multiselect(
    label: str,
    options: Sequence[str],
    name: str,
    *,
    container: Any = None,
    **kwargs: Any,
) -> list[str]:
    """Show a multiselect over string options whose values live in the repeated parameter `name`."""
    host = container if container is not None else st
    remembered = read_list(name) or []
    current = [value for value in remembered if value in set(options)]
    key = _widget_key(name, lambda stored: set(stored) <= set(options))
    values = host.multiselect(label, list(options), default=current, key=key, **kwargs)
    write(name, list(values), [])
    return list(values)


def text(label: str, name: str, *, container: Any = None, **kwargs: Any) -> str:
    """Show a text input whose value lives in the query parameter `name`."""
    host = container if container is not None else st
    key = _widget_key(name, lambda stored: True)
    value = host.text_input(label, value=read(name) or "", key=key, **kwargs)
    write(name, value, "")
    return value


def float_range(
    label: str,
    name: str,
    bounds: tuple[float, float],
    *,
    step: float,
    container: Any = None,
    **kwargs: Any,
) -> tuple[float, float]:
    """Show a range slider whose value lives in the parameter `name` as `low,high`."""
    host = container if container is not None else st
    low, high = bounds
    current = _parse_range(read(name), bounds)
    key = _widget_key(name, lambda stored: low <= stored[0] <= stored[1] <= high)
    chosen = host.slider(label, min_value=low, max_value=high, value=current, step=step, key=key, **kwargs)
    chosen = (type(low)(chosen[0]), type(low)(chosen[1]))
    write(name, f"{chosen[0]:g},{chosen[1]:g}", f"{low:g},{high:g}")
    return chosen


def drop_widget(name: str) -> None:
    """Forget the widget value of `name`, so the widget restarts from the parameter (for callbacks)."""
    st.session_state.pop(f"widget:{name}", None)


def _widget_key(name: str, is_valid: Callable[[Any], bool]) -> str:
    """Return the widget key for `name`, dropping a widget value that is stale or invalid.

    A URL value that differs from the one this session last wrote came from
    outside (a pasted link, a page switch with parameters), so it replaces
    whatever the widget held.
    """
    key = f"widget:{name}"
    if key not in st.session_state:
        return key
    if name in st.query_params:
        in_url = st.query_params.get_all(name)
        written = st.session_state.get(_MEMORY_PREFIX + name)
        written = written if isinstance(written, list) else [written]
        if in_url != written and in_url != [str(item) for item in written]:
            del st.session_state[key]
            return key
    if not is_valid(st.session_state[key]):
        del st.session_state[key]
    return key


def _parse_range(value: str | None, bounds: tuple[float, float]) -> tuple[float, float]:
    """Parse `low,high` and clip it to the bounds; anything unreadable gives the full bounds."""
    low, high = bounds
    if not value:
        return bounds
    try:
        first, second = (float(part) for part in value.split(","))
    except ValueError:
        return bounds
    first, second = max(low, min(first, high)), max(low, min(second, high))
    if first > second:
        return bounds
    cast = type(low)
    return cast(first), cast(second)
