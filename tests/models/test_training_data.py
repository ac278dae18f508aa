"""The training-data table and the overlap of a model with an evaluation dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radioactive.data.collections import (
    dataset_collections,
    known_dataset_collections,
    normalise,
    shares_images,
)
from radioactive.models import MODELS, describe_model
from radioactive.models.training_data import (
    TRAINING_DATA,
    Source,
    TrainingData,
    overlap,
    training_data,
    worst,
)

#: models other workers add next to the built-ins; each must have an entry already
ANNOUNCED = ("sam3", "sammed2d", "medsam2")


def test_every_built_in_and_announced_model_has_a_sourced_entry() -> None:
    for name in (*MODELS, *ANNOUNCED):
        entry = TRAINING_DATA[name]
        assert entry.model == name
        assert entry.sources and all(s.citation.strip() for s in entry.sources), name
        assert entry.status in ("complete", "partial", "unknown", "none")
        if entry.status == "complete":
            assert entry.sets, f"{name}: a complete list names its sets"
        if entry.status == "none":
            assert not entry.sets and not entry.based_on
        for base in entry.based_on:
            assert base in TRAINING_DATA, f"{name} is based on {base}, which has no entry"


def test_table_states_what_the_sources_say() -> None:
    assert training_data("filled_box").status == "none"
    assert training_data("random_walker").status == "none"
    assert training_data("sam").status == "complete" and training_data("sam").sets == ("SA-1B",)
    assert training_data("cvpr25_container").status == "unknown"
    sammed3d = training_data("sammed3d")
    assert sammed3d.status == "partial" and {"LiTS", "MSD-Task03-Liver"} <= set(sammed3d.sets)
    assert "LIDC-IDRI" in training_data("medsam2").sets
    # fine-tuned models inherit their base's data and cannot be more complete than it
    medsam = training_data("medsam")
    assert "SA-1B" in medsam.sets and medsam.status == "partial"
    assert training_data("sam2_video").sets == training_data("sam2").sets
    assert training_data("sam3_video").sets == training_data("sam3").sets


def test_a_model_without_entry_is_unknown_never_clean() -> None:
    plugin = training_data("some_plugin")
    assert plugin.status == "unknown" and plugin.sources
    assert overlap("some_plugin", ["HCC-TACE-Seg"]).status == "possible"
    assert overlap("some_plugin", []).status == "unknown"


def _card(status: str, *sets: str) -> TrainingData:
    return TrainingData("m", status, tuple(sets), (Source("a test", "paper"),))  # type: ignore[arg-type]


def test_overlap_statuses_by_hand() -> None:
    # known: the same collection, whatever the spelling
    hit = overlap(_card("complete", "KiTS19"), ["kits-19"])
    assert hit.status == "known" and hit.matched == ("KiTS19",) and hit.flagged
    # known through a sourced containment, both ways (LiTS is MSD's liver task)
    part = overlap(_card("partial", "LiTS"), ["MSD-Task03-Liver"])
    assert part.status == "known" and part.matched == ("LiTS ~ MSD-Task03-Liver",)
    assert any("Decathlon" in s for s in part.sources)
    assert overlap(_card("complete", "MSD-Task03-Liver"), ["LiTS"]).status == "known"
    # possible: nothing matches, but the list is partial or unknown
    assert overlap(_card("partial", "LiTS"), ["HCC-TACE-Seg"]).status == "possible"
    assert overlap(_card("unknown"), ["HCC-TACE-Seg"]).status == "possible"
    # none: a complete list without a match, or a weight-free method
    assert overlap(_card("complete", "SA-1B"), ["HCC-TACE-Seg"]).status == "none"
    assert overlap(_card("none"), ["HCC-TACE-Seg"]).status == "none"
    assert overlap(_card("none"), []).status == "none"
    # unknown: the dataset's collections are not known; never "none" for a trained model
    for status in ("complete", "partial", "unknown"):
        assert overlap(_card(status, "SA-1B"), []).status == "unknown"


@pytest.mark.parametrize("model", [*MODELS, *ANNOUNCED, "a_plugin"])
def test_unknown_collections_are_never_reported_clean(model: str) -> None:
    result = overlap(model, [])
    expected = "none" if training_data(model).status == "none" else "unknown"
    assert result.status == expected


def test_containment_needs_a_source() -> None:
    assert shares_images("LiTS", "MSD-Task03-Liver")
    assert shares_images("LNQ2023", "Mediastinal-Lymph-Node-SEG")
    assert not shares_images("LiTS", "KiTS19")
    assert not shares_images("MSD-Task06-Lung", "NSCLC-Radiomics")  # not sourced: not claimed
    assert normalise("MSD_Task03 Liver") == normalise("msd-task03-liver")


def test_worst_orders_statuses() -> None:
    assert worst(["none", "possible", "unknown"]) == "possible"
    assert worst(["none", "known"]) == "known"
    assert worst(["none", "unknown"]) == "unknown"
    assert worst([]) == "unknown"


def test_describe_model_has_training_sets() -> None:
    info = describe_model("filled_box")
    assert info["training_sets"]["status"] == "none"
    info = describe_model("sammed3d")
    assert info["training_sets"]["status"] == "partial" and "LiTS" in info["training_sets"]["sets"]
    assert all(s["citation"] and s["kind"] for s in info["training_sets"]["sources"])
    json.dumps(info)


def test_recipes_state_their_collections() -> None:
    known = known_dataset_collections()
    paper = ("MSFLAIR", "HaNSeg", "HNTSMRG", "RIDERLungCT", "LNQ", "ColorectalLiverMetastases",
             "AdrenalACCKi67", "HCCTACE", "PENGWIN", "SegRap")  # fmt: skip
    for name in paper:
        assert known[name], f"the recipe of {name} names no collection"
    assert known["LNQ"] == ("Mediastinal-Lymph-Node-SEG", "LNQ2023")
    assert known["DemoBrainStructuresMR"] == ("Colin27",)
    assert known["DemoLungLesionsCT"] == ()  # the pyradiomics cases' origin is not stated


def test_dataset_collections_sources_in_order(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "x": 1}}))
    assert dataset_collections("Plain", plain) == ()  # a plain nnU-Net dataset: unknown
    assert dataset_collections("Plain", plain, ["LiTS"]) == ("LiTS",)  # the experiment says
    own = tmp_path / "own"
    own.mkdir()
    meta = {"labels": {}, "radioactive": {"collections": ["KiTS19"]}}
    (own / "dataset.json").write_text(json.dumps(meta))
    assert dataset_collections("Own", own) == ("KiTS19",)
    prepared = tmp_path / "hcc"
    prepared.mkdir()
    by_recipe = {"labels": {}, "radioactive": {"recipe": "hcc_tace"}}
    (prepared / "dataset.json").write_text(json.dumps(by_recipe))
    assert dataset_collections("HCCTACE", prepared) == ("HCC-TACE-Seg",)
    assert dataset_collections("HCCTACE", tmp_path / "gone") == ("HCC-TACE-Seg",)  # by name
