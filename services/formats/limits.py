"""Size limits on what a bundle may hold, and the characters that render invisibly."""

from __future__ import annotations

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_ID_CHARS = 255
MAX_QUERY_CHARS = 5_000
MAX_TEXT_CHARS = 200_000
MAX_SHORT_CHARS = 128
# Characters that render invisibly; they are kept (the text is the benchmark's) but a query
# made of nothing else is refused.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
