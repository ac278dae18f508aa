"""Conformance of the MobileSAM adapter with its authors' pipeline, run with ``mobile_sam``'s own
``SamPredictor``.

MobileSAM's contract is the SAM family's (the RadioActive reference's volume percentiles, uint8
RGB slices through the predictor's ``ResizeLongestSide`` and ``Sam.preprocess``), with
``mobile_sam``'s copies of the predictor and transform. The checks, scenarios, tolerances (all
exact) and the comparison helpers are those of ``test_sam.py`` (see its docstring): the same
non-square volume and prompts go through ``SliceWiseModel(MobileSAMBackend)`` and through
``mobile_sam.SamPredictor`` around the same network, tapped where they reach it.

The published weights are needed (MobileSAM has no random-weights option): the checkpoint is
taken from the cache ``make test`` uses (``$RADIOACTIVE_CACHE_DIR`` or the user cache), fetched
there if missing, and the tests are skipped, saying why, only when it can be neither found nor
fetched. The TinyViT encoder takes seconds per 1024² slice on a small CPU, so it is replaced in
both paths by the recorder of ``test_sam.py`` (its input is compared, the rest starts from one
fixed embedding); prompt encoder and mask decoder are the real, pretrained ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conformance.test_sam import (
    SCENARIOS,
    TOLERANCE,
    VOLUME,
    adapter_trace,
    compare_traces,
    conformance,
    conforms,
    failed,
    nontrivial,
    predictor_trace,
    report,
    sam_breakages,
    sam_network,
)

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def mobilesam(demo_cache: Path) -> Any:
    pytest.importorskip("mobile_sam")
    from radioactive.models.base import CheckpointError
    from radioactive.models.checkpoints import checkpoint_status, fetch_checkpoint
    from radioactive.models.mobilesam import MobileSAMBackend

    if checkpoint_status("mobilesam", demo_cache) != "present":
        try:
            fetch_checkpoint("mobilesam", demo_cache)
        except CheckpointError as exc:
            pytest.skip(
                f"the MobileSAM checkpoint is not in {demo_cache / 'models'} and cannot be "
                f"fetched ({exc.problem}); run `radioactive models fetch mobilesam`"
            )
    return MobileSAMBackend(cache=demo_cache, device="cpu")


@pytest.fixture(scope="module")
def mobilesam_predictor(mobilesam) -> Any:
    from mobile_sam import SamPredictor

    return SamPredictor(mobilesam.net)


def test_mobilesam_uses_its_own_packages_transform(mobilesam) -> None:
    from mobile_sam.utils.transforms import ResizeLongestSide

    assert type(mobilesam.resize_transform()) is ResizeLongestSide
    assert mobilesam.resize_transform().target_length == 1024


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_mobilesam_adapter_conforms_to_its_sam_predictor(
    mobilesam, mobilesam_predictor, scenario
) -> None:
    network = sam_network(mobilesam.net)
    ours = adapter_trace(mobilesam, network, VOLUME, scenario)
    theirs = predictor_trace(mobilesam_predictor, network, VOLUME, scenario)
    checks = compare_traces(ours, theirs)
    assert conforms(checks), report(checks)
    nontrivial(theirs)
    assert len(ours.images) == 1 and len(ours.prompts) == len(scenario.steps)
    assert {c.kind for c in checks} == set(TOLERANCE)


@pytest.mark.parametrize("breakage", ["per-slice-scaling", "half-open-box"])
def test_mobilesam_comparison_reports_a_broken_adapter(
    mobilesam, mobilesam_predictor, breakage
) -> None:
    broken, must_fail, scenario = sam_breakages(mobilesam)[breakage]
    checks = conformance(broken, mobilesam_predictor, sam_network(mobilesam.net), scenario)
    assert not conforms(checks)
    assert must_fail <= failed(checks), report(checks)
