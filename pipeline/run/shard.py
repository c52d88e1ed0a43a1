"""`--shard i/n`: a stable split of the inputs so n machines can share one large run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'2/8' is the second of eight shards (1-based)."""
        index, slash, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            shard = None
        if not slash or shard is None or not 1 <= shard.index <= shard.count:
            raise ValueError(f"--shard {text!r}: expected i/n with 1 <= i <= n, e.g. 1/4")
        return shard

    def owns(self, name: str) -> bool:
        """Whether this shard processes the document named `name` (by a hash of it, not by position)."""
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
