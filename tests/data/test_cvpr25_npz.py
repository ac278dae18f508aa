"""Export to the CVPR 2025 challenge's npz files and import of the organisers' metrics CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from radioactive.cli import app
from radioactive.data import open_dataset
from radioactive.data.cvpr25_npz import ALL_CLASSES, export_cvpr25
from radioactive.prompts.cvpr25 import BOX_KEYS, organisers_box
from radioactive.runner.store import ResultStore
from tests.runner.tiny_dataset import write_dataset


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_export_writes_the_challenge_files(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "Dataset001_Tiny")
    code, stdout, stderr = _invoke("datasets", "export-cvpr25", str(root), "--out",
                                   str(tmp_path / "npz"), "--seed", "3")  # fmt: skip
    assert code == 0, stderr
    assert "2 challenge files written" in " ".join(stdout.split())
    files = sorted((tmp_path / "npz").glob("*.npz"))
    assert [f.name for f in files] == ["CT_c1.npz", "CT_c2.npz"]  # modality prefix + case id
    ds = open_dataset(root)
    for path in files:
        with np.load(path, allow_pickle=True) as npz:  # as the organisers' script loads them
            data = {k: npz[k] for k in npz.files}
        assert sorted(data) == ["boxes", "gts", "imgs", "spacing"]
        case = ds.case(path.stem.removeprefix("CT_"))
        assert data["imgs"].dtype == np.uint8 and data["imgs"].shape == case.image.shape
        assert data["spacing"].dtype == np.float64
        np.testing.assert_array_equal(data["spacing"], case.image.spacing_mm)
        assert sorted(np.unique(data["gts"]).tolist()) == [0, 1, 2]
        np.testing.assert_array_equal(data["gts"] == 2, case.label.array == 2)
        boxes = list(data["boxes"])
        assert len(boxes) == 2 and all(tuple(b) == BOX_KEYS for b in boxes)
        for number, box in enumerate(boxes, start=1):
            assert {type(v) for v in box.values()} == {np.int64}
            candidates = [organisers_box(data["gts"] == number, s) for s in range(6)]
            assert {k: int(v) for k, v in box.items()} in candidates
    again = tmp_path / "again"
    export_cvpr25(ds, again, seed=3)
    for path in files:
        with np.load(path, allow_pickle=True) as a, np.load(again / path.name,
                                                            allow_pickle=True) as b:  # fmt: skip
            assert list(a["boxes"]) == list(b["boxes"])  # the seed fixes the shifts
    assert sorted(p.name for p in (tmp_path / "npz").iterdir()) == ["CT_c1.npz", "CT_c2.npz"]
    assert json.loads((tmp_path / "npz.classes.json").read_text())["CT_c1.npz"]["2"] == {
        "name": "cube", "label_value": 2,
    }  # fmt: skip


def _metrics_csv(path: Path, rows: list[dict]) -> Path:
    columns = ["CaseName", "TotalRunningTime", *(f"RunningTime_{i}" for i in range(1, 7)),
               "DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final",
               *(f"DSC_{i}" for i in range(1, 7)), *(f"NSD_{i}" for i in range(1, 7)),
               "num_class", "runtime_upperbound"]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, 0) for c in columns})
    return path


def test_import_puts_the_organisers_numbers_in_the_store(tmp_path: Path) -> None:
    box_case = {"CaseName": "CT_a.npz", **{f"DSC_{i}": 0.5 + 0.05 * i for i in range(1, 7)},
                **{f"NSD_{i}": 0.4 + 0.05 * i for i in range(1, 7)},
                **{f"RunningTime_{i}": 2.0 for i in range(1, 7)}}  # fmt: skip
    no_box = {"CaseName": "CT_b.npz", **{f"DSC_{i}": 0.1 * i for i in range(2, 7)},
              **{f"NSD_{i}": 0.1 * i for i in range(2, 7)},
              **{f"RunningTime_{i}": 1.0 for i in range(2, 7)}}  # fmt: skip
    save = tmp_path / "seg"
    _metrics_csv(save / "teamx" / "teamx_metrics.csv", [box_case, no_box])
    out = tmp_path / "results"
    code, stdout, stderr = _invoke("import-cvpr25", str(save), "--out", str(out),
                                   "--dataset", "Tiny", "--modality", "CT")  # fmt: skip
    assert code == 0, stderr
    assert "teamx: 2 cases imported" in " ".join(stdout.split())
    with ResultStore(out, read_only=True) as store:
        steps, units = store.steps(), store.units()
    assert set(units["model"]) == {"teamx"} and set(units["target"]) == {ALL_CLASSES}
    prompters = units.set_index("case_id")["prompter"].to_dict()
    assert prompters == {"CT_a": "cvpr25_box(max_shift=5)", "CT_b": "no_prompt"}
    a = steps[steps["case_id"] == "CT_a"].sort_values("step")
    np.testing.assert_allclose(a["dice"], [0.5 + 0.05 * i for i in range(1, 7)])
    np.testing.assert_allclose(a["decoder_s"], [2.0] * 6)
    assert set(steps["modality"]) == {"CT"}
    # importing again adds nothing; the report reads the imported units
    assert _invoke("import-cvpr25", str(save), "--out", str(out), "--dataset", "Tiny")[0] == 0
    with ResultStore(out, read_only=True) as store:
        assert len(store.units()) == 2
    assert _invoke("report", str(out))[0] == 0
    assert (out / "report" / "report.html").is_file()
    code, _, stderr = _invoke("import-cvpr25", str(tmp_path / "nothing"), "--out", str(out),
                              "--dataset", "Tiny")  # fmt: skip
    assert code != 0 and "no <team>_metrics.csv here" in stderr
