"""Where tiles are cut from a painting."""

from __future__ import annotations


def tile_origins(height: int, width: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left (x, y) of every ``size``×``size`` tile on a grid with ``stride``.

    Where the grid leaves more than a quarter tile uncovered at the right or bottom, one more tile is
    pulled back flush with the edge (no padding: it would put artificial flat bars into training data). A
    remainder of at most a quarter tile stays uncovered: that tile would almost repeat its neighbour. A
    painting smaller than one tile yields no tiles.
    """
    if size <= 0 or stride <= 0:
        raise ValueError(f"tile size and stride must be positive, got size={size} stride={stride}")
    if height < size or width < size:
        return []
    xs = _axis_origins(width, size, stride)
    ys = _axis_origins(height, size, stride)
    return [(x, y) for y in ys for x in xs]


def _axis_origins(length: int, size: int, stride: int) -> list[int]:
    origins = list(range(0, length - size + 1, stride))
    last = length - size
    # Cover the far edge only when the grid misses more than a quarter tile: a sliver would
    # otherwise produce an almost-duplicate of its neighbour.
    if origins[-1] != last and last - origins[-1] > size // 4:
        origins.append(last)
    return origins
