"""The geometry every prompt type knows: kind, slices, touches, centre, inside, within."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radioactive.prompts.cost import make_interaction, views_of
from radioactive.prompts.types import (
    Box2D,
    Box3D,
    Lasso,
    MaskPrompt,
    Point,
    PromptKind,
    Scribble,
    ZLimit,
    prompt_from_dict,
    slices_of,
)

PROMPTS = [
    Point((3, 4, 5)),
    Box2D(2, (1, 1), (4, 6)),
    Box3D((1, 2, 3), (4, 6, 9)),
    Scribble(((5, 1, 1), (3, 2, 2), (5, 3, 3))),
    Lasso(6, ((1.0, 1.0), (1.0, 5.0), (4.0, 3.0))),
    ZLimit(7, upper=True),
]


def test_one_kind_enum_equal_to_its_strings() -> None:
    assert {p.kind for p in PROMPTS} | {MaskPrompt(np.zeros(2)).kind} == set(PromptKind)
    assert PromptKind.BOX2D == "box2d" and f"{PromptKind.BOX2D}" == "box2d"
    assert "scribble" in {PromptKind.SCRIBBLE} and PromptKind.POINT in {"point"}
    for p in PROMPTS:  # stored JSON holds plain strings and rebuilds the same prompt
        d = json.loads(json.dumps(p.to_dict()))
        assert d["type"] == p.kind.value and prompt_from_dict(d) == p


@pytest.mark.parametrize(
    ("prompt", "slices"),
    [
        (PROMPTS[0], (3,)),
        (PROMPTS[1], (2,)),
        (PROMPTS[2], (1, 2, 3)),  # half-open z range
        (PROMPTS[3], (3, 5)),
        (PROMPTS[4], (6,)),
        (PROMPTS[5], (7,)),
        (MaskPrompt(np.zeros((4, 4))), ()),
    ],
)
def test_slices_and_touches_agree(prompt, slices) -> None:
    assert prompt.slices() == slices
    assert [z for z in range(-2, 12) if prompt.touches(z)] == list(slices)


def test_slices_of_many_prompts_is_the_sorted_union() -> None:
    assert slices_of(PROMPTS) == (1, 2, 3, 5, 6, 7)
    inter = make_interaction(PROMPTS[:4], PROMPTS[:4], np.ones((9, 10, 10), bool), "t")
    assert inter.slices == (1, 2, 3, 5)


def test_centres() -> None:
    assert Point((1, 2, 3)).centre() == (1.0, 2.0, 3.0)
    assert Box3D((10, 10, 10), (20, 21, 22)).centre() == (14.5, 15.0, 15.5)
    assert Box2D(4, (2, 2), (5, 7)).centre() == (4.0, 3.0, 4.0)
    assert PROMPTS[3].centre() == pytest.approx((13 / 3, 2.0, 2.0))
    assert PROMPTS[4].centre() == pytest.approx((6.0, 2.0, 3.0))
    assert not PromptKind.ZLIMIT.located and not PromptKind.MASK.located
    with pytest.raises(ValueError, match="no position"):
        ZLimit(3, upper=False).centre()


def test_inside_a_shape() -> None:
    m = np.zeros((9, 10, 10), bool)
    m[2:5, 1:7, 1:9] = True
    assert Point((3, 4, 5)).inside(m) and not Point((6, 4, 5)).inside(m)
    assert not Point((30, 4, 5)).inside(m)  # outside the array is outside the shape
    assert Box2D(2, (1, 1), (4, 6)).inside(m) and not Box2D(2, (0, 1), (4, 6)).inside(m)
    assert Box3D((2, 1, 1), (5, 7, 9)).inside(m) and not Box3D((2, 1, 1), (6, 7, 9)).inside(m)
    assert Scribble(((2, 1, 1), (4, 6, 8))).inside(m)
    assert not Scribble(((2, 1, 1), (5, 6, 8))).inside(m)
    assert Lasso(3, ((1.0, 1.0), (1.0, 6.0), (5.0, 3.0))).inside(m)
    assert not Lasso(3, ((1.0, 1.0), (1.0, 9.0), (9.0, 3.0))).inside(m)
    assert ZLimit(4, upper=True).inside(m) and not ZLimit(5, upper=True).inside(m)
    assert not MaskPrompt(np.zeros(2)).inside(m)


def test_within_an_image_is_the_support_check() -> None:
    shape = (9, 10, 10)
    assert all(p.within(shape) for p in PROMPTS)
    outside = [
        Point((9, 0, 0)),
        Box2D(2, (1, 1), (11, 6)),
        Box3D((0, 0, 0), (10, 5, 5)),
        Scribble(((1, 1, 1), (1, -1, 1))),
        Lasso(2, ((1.0, 1.0), (1.0, 12.0), (4.0, 3.0))),
        ZLimit(9, upper=True),
    ]
    for p in outside:
        assert not p.within(shape), p
        with pytest.raises(ValueError, match=f"a {p.kind} prompt lies outside the volume"):
            make_interaction([p], [p], np.ones(shape, bool), "t")


def test_views_follow_the_slices_except_boxes_and_planar_scribbles() -> None:
    assert views_of(Point((3, 4, 5))) == {(0, 3)}
    assert views_of(Box3D((1, 2, 3), (4, 6, 9))) == {(0, 2), (1, 3)}
    assert views_of(Scribble(((5, 1, 1), (3, 1, 2)))) == {(1, 1)}  # one coronal plane
    assert views_of(Scribble(((5, 1, 1), (3, 2, 2)))) == {(0, 3), (0, 5)}
