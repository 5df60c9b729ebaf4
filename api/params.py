"""Query and path parameters shared by the routes, range-checked before any SQL sees them.

Why bounded: an unbounded integer reaches the database as is, and one beyond 64 bits makes the
driver fail (a 500 instead of a 422). The bounds are in the OpenAPI document, so clients see them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

#: Largest page a listing returns.
MAX_LIMIT = 1000
#: Largest offset a listing takes: far beyond any real table, far below 64 bits.
MAX_OFFSET = 1_000_000_000
#: Largest ledger index or tree size asked about: a 64-bit signed integer's range, with room.
MAX_INDEX = 2**62

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT} items")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
LedgerIndex = Annotated[int, Query(ge=0, le=MAX_INDEX)]
TreeSize = Annotated[int, Query(ge=1, le=MAX_INDEX)]
TreeSizePath = Annotated[
    int, Path(ge=0, le=MAX_INDEX, description="A signed checkpoint's tree size (0: the empty log)")
]
#: An id in a path: ids are UUIDs (36 characters); anything longer names nothing.
Id = Annotated[str, Path(min_length=1, max_length=36)]
