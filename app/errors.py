"""Bad input becomes a message, and the app keeps serving.

Handlers raise ``ValueError`` (including ``cycletrans.data.images.ImageInputError``) or
``FileNotFoundError`` with a message saying what was expected and found. Two ways to show it:

- :func:`api_endpoint` registers a public endpoint (``/search``, ...) on a hidden trigger; API
  callers get the message as an error (``gr.Error``);
- :func:`in_place` wraps the handler of a UI event: the message goes to one output (the panel
  the user reads) and a toast, and the other outputs keep what they showed (``gr.skip()``)
  instead of turning into red "Error" badges.

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

USER_ERRORS = (ValueError, FileNotFoundError)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a handler: ValueError / FileNotFoundError -> ``gr.Error(message)``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as error:
            raise gr.Error(str(error), print_exception=False) from error

    return wrapper


def in_place(
    fn: Callable[..., Any],
    outputs: int,
    message_at: int,
    formatted: Callable[[str], Any] = lambda text: f"**⚠ {text}**",
) -> Callable[..., Any]:
    """Wrap a UI handler with ``outputs`` outputs: on a user error, output ``message_at`` shows
    ``formatted(message)``, a toast repeats it, and the other outputs are left as they were."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as error:
            gr.Warning(str(error))
            kept: list[Any] = [gr.skip()] * outputs
            kept[message_at] = formatted(str(error))
            return tuple(kept) if outputs > 1 else kept[0]

    return wrapper


def api_endpoint(
    fn: Callable[..., Any], inputs: list, outputs: list, name: str, **kwargs: Any
) -> None:
    """Register ``fn`` as the public endpoint ``/name`` on a hidden button (errors raise)."""
    trigger = gr.Button(visible=False, elem_id=f"api-{name}")
    trigger.click(user_errors(fn), inputs, outputs, api_name=name, **kwargs)


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
