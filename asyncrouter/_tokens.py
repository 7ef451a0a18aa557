"""Token estimates for when a provider reports no usage, for context-window checks and budget reservations.

A fast heuristic, not a tokenizer: about four characters per token for Latin-script text, and about one token
per character for CJK ideographs and kana/hangul, whose tokenizers rarely merge characters. Estimates are
marked as such wherever they are reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["WIDE_RE", "estimate_messages_tokens", "estimate_tokens", "message_text"]

# CJK Unified Ideographs (+ext A), Hiragana, Katakana, Hangul syllables and Jamo, CJK punctuation, fullwidth forms.
WIDE_RE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u1100-\u11ff\uff00-\uffef]")
_PER_MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """Estimate the token count of *text* (never less than 1 for non-empty text)."""
    if not text:
        return 0
    wide = len(text) - len(WIDE_RE.sub("", text)) if not text.isascii() else 0
    narrow = len(text) - wide
    return max(1, wide + (narrow + 3) // 4)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message, whether ``content`` is a string or a list of parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return str(content)


def estimate_messages_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """Estimate the input tokens of a chat: each message's text plus a small per-message overhead."""
    total = 0
    for m in messages:
        total += estimate_tokens(message_text(m)) + _PER_MESSAGE_OVERHEAD
    return total
