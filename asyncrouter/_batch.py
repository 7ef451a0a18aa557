"""Batch routing with bounded memory: a fixed pool of workers pulls from the input lazily.

``astream_many`` never holds more than ``concurrency`` requests in flight plus ``concurrency`` finished
results waiting for the consumer, whatever the size of the input, so 100k prompts from a generator cost the
same memory as 100. ``aroute_many`` builds on it and keeps one slot per input for the aligned result list.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._models import Response

__all__ = ["BatchItem", "ProgressCallback", "iter_batch", "route_kwargs"]

#: a prompt string, or a mapping of ``aroute`` arguments: ``{"prompt": ...}`` or ``{"messages": [...]}`` + params
BatchItem: TypeAlias = str | Mapping[str, Any]
#: called as ``on_progress(done, total)`` after each finished item (total is None for an unsized input)
ProgressCallback: TypeAlias = Callable[[int, int | None], Any]

DEFAULT_BATCH_CONCURRENCY = 64


def route_kwargs(item: BatchItem, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The ``aroute`` keyword arguments for one batch item."""
    if isinstance(item, str):
        return {**defaults, "prompt": item}
    if isinstance(item, Mapping):
        if "prompt" not in item and "messages" not in item:
            raise ValueError("a batch item mapping needs 'prompt' or 'messages'")
        return {**defaults, **item}
    raise TypeError(f"a batch item must be a str or a mapping, not {type(item).__name__}")


async def iter_batch(
    route: Callable[..., Awaitable[Response]],
    items: Iterable[BatchItem],
    *,
    concurrency: int = DEFAULT_BATCH_CONCURRENCY,
    return_exceptions: bool = True,
    on_progress: ProgressCallback | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> AsyncIterator[tuple[int, Response | BaseException]]:
    """Yield ``(index, result)`` as items finish. See :meth:`Router.astream_many`."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    source = iter(enumerate(items))
    defaults = dict(defaults or {})
    send, receive = anyio.create_memory_object_stream[tuple[int, Response | BaseException]](concurrency)
    done = 0

    async def worker(out: MemoryObjectSendStream[tuple[int, Response | BaseException]]) -> None:
        async with out:
            for index, item in source:  # a shared iterator: each worker pulls the next item lazily
                try:
                    result: Response | BaseException = await route(**route_kwargs(item, defaults))
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    result = exc
                # The buffer holds one result per worker, so it has room unless the consumer is behind; only
                # then wait. (send() would first yield to the event loop: one extra loop pass per item.)
                try:
                    try:
                        out.send_nowait((index, result))
                    except anyio.WouldBlock:
                        await out.send((index, result))
                except anyio.BrokenResourceError:
                    return  # the consumer is gone (it stopped early or is being cancelled): nothing to deliver to

    async with anyio.create_task_group() as tg:
        async with send:
            for _ in range(concurrency):
                tg.start_soon(worker, send.clone())
        async with receive:
            try:
                while True:
                    # Take what is ready without a trip through the event loop; wait only when nothing is.
                    try:
                        index, result = receive.receive_nowait()
                    except anyio.WouldBlock:
                        try:
                            index, result = await receive.receive()
                        except anyio.EndOfStream:
                            break
                    except anyio.EndOfStream:
                        break
                    done += 1
                    if on_progress is not None:
                        ret = on_progress(done, total)
                        if inspect.isawaitable(ret):
                            await ret
                    yield index, result
            except GeneratorExit:
                # The consumer stopped early (break, aclose): cancel the workers and let the task group finish
                # normally; re-raising GeneratorExit here would come back wrapped in an exception group.
                tg.cancel_scope.cancel()
