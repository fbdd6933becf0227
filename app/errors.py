"""Bad input becomes a message in the browser (``gr.Error``), and the app keeps serving.

:func:`whole_number` checks the handlers' numeric arguments.

Handlers raise ``ValueError`` (including :class:`app.images.ImageInputError`) or
``FileNotFoundError`` with a message saying what was expected and found; :func:`user_errors`
turns these into ``gr.Error`` so that Gradio shows the message (in the UI and to API clients)
instead of a generic "Error".

Example:
    >>> @user_errors
    ... def handler(top_k):
    ...     raise ValueError(f"top_k must be at least 1, got {top_k}")
    >>> handler(0)
    Traceback (most recent call last):
    gradio.exceptions.Error: 'top_k must be at least 1, got 0'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Gradio handler: ValueError / FileNotFoundError -> ``gr.Error(message)``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as error:
            raise gr.Error(str(error), print_exception=False) from error

    return wrapper


def whole_number(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``low..high`` (an integral float such as 10.0 is accepted).

    Example:
        >>> whole_number(10.0, "top_k", 1, 50)
        10
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {int(number)}")
    return int(number)
