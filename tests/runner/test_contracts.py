"""Input contracts through the runner: the modality comes from a plain nnU-Net dataset.json, an
unknown modality stops the run before anything is computed, and every run records the contract
each model used (manifest, step rows, unit identity)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from radioactive.models import planned_contract
from radioactive.models.contracts import UnknownModalityError, modality_key, select_contract
from radioactive.models.litemedsam import LITEMEDSAM_CONTRACTS
from radioactive.runner.config import config_from_dict
from radioactive.runner.run import run_experiment
from radioactive.runner.store import ResultStore

pytestmark = pytest.mark.registry


def _plain_dataset(demo_suite: Path, root: Path, channel: str) -> Path:
    """The demo lung CT as a user's nnU-Net dataset: only the standard dataset.json keys."""
    src = demo_suite / "Dataset901_DemoLungLesionsCT"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    shutil.copy(src / "imagesTr" / "lung1_0000.nii.gz", root / "imagesTr")
    shutil.copy(src / "labelsTr" / "lung1.nii.gz", root / "labelsTr")
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": channel},
                "labels": {"background": 0, "lesion": 1},
                "numTraining": 1,
                "file_ending": ".nii.gz",
            }
        ),
        encoding="utf-8",
    )
    return root


def _config(dataset: Path, cache: Path, modality: str | None = None) -> dict:
    entry: dict = {"name": str(dataset)}
    if modality:
        entry["modality"] = modality
    return {
        "name": "contracts",
        "datasets": [entry],
        "models": [{"name": "litemedsam"}, {"name": "filled_box"}],
        "prompters": ["box_per_slice"],
        "cache_dir": str(cache),
    }


def test_modality_words_reduce_to_ct_or_mr() -> None:
    assert [modality_key(m) for m in ("CT", "ct", "MRI T2", "FLAIR", "t1", "MR")] == [
        "CT", "CT", "MR", "MR", "MR", "MR",
    ]  # fmt: skip
    assert modality_key("rgb") is None and modality_key(None) is None
    assert select_contract("litemedsam", LITEMEDSAM_CONTRACTS, "MRI T2").name.endswith("mr-v1")
    with pytest.raises(UnknownModalityError, match="modality 'rgb'"):
        select_contract("litemedsam", LITEMEDSAM_CONTRACTS, "rgb")


def test_a_plain_nnunet_ct_dataset_runs_with_the_ct_contract_and_records_it(
    demo_suite: Path, demo_cache: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from radioactive.models.checkpoints import fetch_checkpoint

    fetch_checkpoint("litemedsam", demo_cache)
    ds = _plain_dataset(demo_suite, tmp_path / "Dataset001_Mine", "CT")
    out = tmp_path / "results"
    report = run_experiment(config_from_dict(_config(ds, demo_cache)), out)
    assert report.units_failed == 0 and report.units_written == 2
    with ResultStore(out, read_only=True) as store:
        steps = store.steps()
        runs = store.runs()
    contracts = json.loads(runs["input_contracts"].iloc[-1])
    assert contracts["litemedsam"]["Dataset001_Mine"]["contract"] == "litemedsam-ct-v1"
    assert contracts["filled_box"]["Dataset001_Mine"]["contract"] == "filled-box-v1"
    lite = steps[steps["model"] == "litemedsam"].iloc[0]
    used = json.loads(lite["versions"])["contract"]
    assert used == {"contract": "litemedsam-ct-v1", "intensity": "medsam_ct", "modality": "CT"}
    # the authors' contract on this small lesion: Dice 0.50, NSD 0.83 (benchmarks/contracts.py)
    assert lite["dice"] > 0.45 and lite["nsd"] > 0.75


def test_an_unknown_modality_stops_the_run_naming_the_file_and_the_option(
    demo_suite: Path, demo_cache: Path, tmp_path: Path
) -> None:
    ds = _plain_dataset(demo_suite, tmp_path / "Dataset002_Unknown", "rgb")
    out = tmp_path / "results"
    with pytest.raises(UnknownModalityError) as info:
        run_experiment(config_from_dict(_config(ds, demo_cache)), out)
    text = str(info.value)
    assert str(ds / "dataset.json") in text and "modality: CT" in text
    assert "channel_names" in text and "litemedsam" in text
    assert not (out / "results.duckdb").exists() or _n_units(out) == 0
    # the experiment's `modality:` sets it; the contract then follows it
    cfg = config_from_dict(_config(ds, demo_cache, modality="MR"))
    assert cfg.datasets[0].modality == "MR"
    assert planned_contract("litemedsam", {}, "MR")["contract"] == "litemedsam-mr-v1"


def test_the_contract_is_part_of_the_unit_identity() -> None:
    from radioactive.runner.config import ModelSpec
    from radioactive.runner.run import _context

    cfg = config_from_dict(
        {"name": "x", "datasets": [{"name": "demo"}], "models": [{"name": "litemedsam"}],
         "prompters": ["box_per_slice"]}
    )  # fmt: skip
    model = ModelSpec(name="litemedsam")
    ct = _context(cfg, model, planned_contract("litemedsam", {}, "CT"))
    mr = _context(cfg, model, planned_contract("litemedsam", {}, "MR"))
    old = _context(cfg, model, planned_contract("litemedsam", {"intensity": "percentile"}, "CT"))
    assert len({ct, mr, old}) == 3


def _n_units(out: Path) -> int:
    with ResultStore(out, read_only=True) as store:
        return len(store.steps())


def test_planned_contracts_name_sammed3d_variants() -> None:
    assert planned_contract("sammed3d", {}, "CT")["contract"] == "sammed3d-authors-ct-v1"
    centre = planned_contract("sammed3d", {"grid": "centre"}, "MR")["contract"]
    assert centre == "sammed3d-authors-mr-v1+grid:centre"
    assert planned_contract("sammed3d", {"contract": "legacy"}, None)["contract"] == (
        "sammed3d-legacy"
    )
    with pytest.raises(UnknownModalityError):
        planned_contract("sammed3d", {}, "unknown")
