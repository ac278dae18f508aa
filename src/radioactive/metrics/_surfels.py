"""Surface elements ("surfels") of a binary volume: the 2×2×2 neighbourhood codes and their areas.

The surface of a mask is taken on the *corner lattice*: a point of that lattice sits at the shared
corner of 2×2×2 voxels (half a voxel off the voxel centres). Its *neighbourhood code* is the 8-bit
pattern of those voxels; codes other than 0 (all outside) and 255 (all inside) are surface points.
Each code carries the area, in mm², of the marching-cubes surface patch inside the 2×2×2 cell.

The per-code patch is derived here from first principles (no table is copied):

1. the patch vertices are the midpoints of the cell edges whose two end voxels differ;
2. of the two sides of the cell, the one with at most four voxels (the foreground when both have
   four) is taken as the "inside", and on a face with two diagonal inside voxels the inside voxels
   are kept apart (each cut edge is joined to the cut edge sharing its inside voxel); this pairs the
   cut edges of each face into segments, and the segments close into polygons;
3. every polygon is split into triangles by the triangulation of largest total area on the
   isotropic unit cell (this choice is unique for every code: all largest-area triangulations have
   the same area under any anisotropic scaling);
4. a triangle's area vector is scaled per axis by the spacing (component along axis ``i`` times the
   product of the other two spacings) and the code's area is the sum of the triangle areas.

This reproduces the area table of DeepMind's ``surface-distance`` package (its
``create_table_neighbour_code_to_surface_area``) to rounding for any spacing; the tests check it.
Bit ``b`` of a code (value ``2**b``) is the voxel at offset ``o = (o0, o1, o2)`` in {0, 1}³ with
``4*o0 + 2*o1 + o2 = 7 - b`` relative to the lower corner of the cell.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np

_Corner = tuple[int, int, int]
_Edge = tuple[_Corner, _Corner]

_CORNERS: tuple[_Corner, ...] = tuple((a, b, c) for a, b, c in itertools.product((0, 1), repeat=3))
_EDGES: tuple[_Edge, ...] = tuple(
    (a, b)
    for a in _CORNERS
    for b in _CORNERS
    if a < b and sum(abs(x - y) for x, y in zip(a, b, strict=True)) == 1
)
_FACES: tuple[tuple[_Corner, ...], ...] = tuple(
    tuple(c for c in _CORNERS if c[axis] == side) for axis in range(3) for side in (0, 1)
)


def corner_of_bit(bit: int) -> _Corner:
    """Offset (o0, o1, o2) in {0, 1}³ of the voxel that bit ``bit`` (value ``2**bit``) encodes."""
    index = 7 - bit
    return ((index >> 2) & 1, (index >> 1) & 1, index & 1)


def _polygons(inside: frozenset[_Corner]) -> list[list[_Edge]]:
    """Closed loops of cut edges of one cell (see the module docstring, step 2)."""
    cut = [e for e in _EDGES if (e[0] in inside) != (e[1] in inside)]
    neighbours: dict[_Edge, list[_Edge]] = {e: [] for e in cut}
    for face in _FACES:
        face_cut = [e for e in cut if e[0] in face and e[1] in face]
        if len(face_cut) == 2:
            a, b = face_cut
            neighbours[a].append(b)
            neighbours[b].append(a)
        elif len(face_cut) == 4:  # two diagonal inside voxels: keep them apart
            for a, b in itertools.combinations(face_cut, 2):
                if {c for c in a if c in inside} == {c for c in b if c in inside}:
                    neighbours[a].append(b)
                    neighbours[b].append(a)
    loops: list[list[_Edge]] = []
    seen: set[_Edge] = set()
    for start in cut:
        if start in seen:
            continue
        loop, previous, current = [start], None, start
        seen.add(start)
        while True:
            following = [n for n in neighbours[current] if n != previous and n not in seen]
            if not following:
                break
            previous, current = current, following[0]
            loop.append(current)
            seen.add(current)
        loops.append(loop)
    return loops


@functools.cache
def _triangulations(n: int) -> tuple[tuple[tuple[int, int, int], ...], ...]:
    """All triangulations of a polygon with vertices 0..n-1 (as vertex-index triples)."""

    def split(vertices: tuple[int, ...]) -> list[tuple[tuple[int, int, int], ...]]:
        if len(vertices) < 3:
            return [()]
        first, last = vertices[0], vertices[-1]
        result = []
        for k in range(1, len(vertices) - 1):
            for left in split(vertices[: k + 1]):
                for right in split(vertices[k:]):
                    result.append((*left, *right, (first, vertices[k], last)))
        return result

    return tuple(split(tuple(range(n))))


def _triangle_area_vectors(points: np.ndarray, triangles: Sequence[tuple[int, int, int]]):
    p = points[[t[0] for t in triangles]]
    q = points[[t[1] for t in triangles]]
    r = points[[t[2] for t in triangles]]
    return 0.5 * np.cross(q - p, r - p)


@functools.cache
def unit_area_vectors() -> tuple[np.ndarray, np.ndarray]:
    """Triangle area vectors of every code on the unit cell.

    Returns ``(codes, vectors)``: ``vectors[i]`` (three components along axes 0, 1, 2) is a
    triangle of the patch of code ``codes[i]``. Codes 0 and 255 have no triangle.
    """
    codes: list[int] = []
    vectors: list[np.ndarray] = []
    for code in range(1, 255):
        inside = frozenset(corner_of_bit(b) for b in range(8) if code >> b & 1)
        if len(inside) > 4:
            inside = frozenset(_CORNERS) - inside
        for loop in _polygons(inside):
            points = np.array([[(a + b) / 2 for a, b in zip(*edge, strict=True)] for edge in loop])
            best, best_area = None, -1.0
            for triangles in _triangulations(len(points)):
                vecs = _triangle_area_vectors(points, triangles)
                area = float(np.linalg.norm(vecs, axis=1).sum())
                if area > best_area + 1e-12:
                    best, best_area = vecs, area
            assert best is not None
            vectors.extend(best)
            codes.extend([code] * len(best))
    out_codes = np.array(codes, dtype=np.intp)
    out_vectors = np.array(vectors, dtype=np.float64)
    out_codes.setflags(write=False)
    out_vectors.setflags(write=False)
    return out_codes, out_vectors


@functools.lru_cache(maxsize=64)
def surfel_area_table(spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Area in mm² of the surface patch of each of the 256 neighbourhood codes.

    ``spacing_mm`` is the voxel size along axes (0, 1, 2). Codes 0 and 255 have area 0.
    The returned array is read-only and cached per spacing.
    """
    s0, s1, s2 = (float(s) for s in spacing_mm)
    codes, vectors = unit_area_vectors()
    scaled = vectors * np.array([s1 * s2, s0 * s2, s0 * s1])
    table = np.zeros(256, dtype=np.float64)
    np.add.at(table, codes, np.linalg.norm(scaled, axis=1))
    table.setflags(write=False)
    return table
