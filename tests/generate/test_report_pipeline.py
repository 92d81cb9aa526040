"""ReportGenerator on the real CT sample with a real (untrained) tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from mu2.errors import Mu2Error
from mu2.findings.writer import QUESTION_TEMPLATES
from mu2.generate.decode import _generate_from_encoding
from mu2.generate.fhir import to_fhir
from mu2.generate.pipeline import ReportGenerator
from mu2.generate.regions import DEFAULT_QUESTION
from mu2.io import load_ct


def test_default_question_is_one_the_model_trains_on() -> None:
    assert DEFAULT_QUESTION in QUESTION_TEMPLATES


def test_report_on_real_ct(generator: ReportGenerator, real_ct_path: Path) -> None:
    res = generator.report(real_ct_path, max_new_tokens=6, heatmap=True)
    # Regions of this abdomen/pelvis CT (lung bases only) -> one section each.
    assert [s.region for s in res.sections] == ["abdomen", "pelvis"]
    assert all("findings of the" in s.question for s in res.sections)
    assert set(res.timings) == {
        "load", "coverage", "prepare", "encode", "generate", "heatmap", "total"
    }  # fmt: skip
    assert all(v > 0 for v in res.timings.values())
    parts = ("load", "coverage", "prepare", "encode", "generate", "heatmap")
    assert res.timings["total"] == pytest.approx(sum(res.timings[k] for k in parts))
    assert res.input["shape"] == [122, 101, 112]
    assert res.input["spacing_mm"] == [3.0, 3.0, 3.0]
    assert res.input["orientation"] == "RAS"
    assert res.heatmap.shape == (122, 101, 112)
    assert res.heatmap.min() >= 0 and res.heatmap.max() == pytest.approx(1.0)
    doc = json.loads(json.dumps(res.to_dict()))
    assert doc["heatmap"]["shape"] == [122, 101, 112]
    assert set(doc["report_by_region"]) == {"abdomen", "pelvis"}
    assert doc["model"]["id"] == generator.model_id
    # a model saved without a card: the output says its training data are unknown
    assert doc["model"]["card"]["known"] is False
    assert any("model card missing" in w for w in doc["warnings"])
    assert doc["coverage"]["regions"] == ["abdomen", "pelvis"]


def test_region_and_question_choices(generator: ReportGenerator, real_ct_path: Path) -> None:
    volume = load_ct(real_ct_path)
    with pytest.raises(Mu2Error, match="does not cover the chest.*--force"):
        generator.report(volume, region="all", max_new_tokens=2)
    res = generator.report(volume, region="all", max_new_tokens=2, force=True)
    assert [s.region for s in res.sections] == ["chest", "abdomen", "pelvis"]
    assert any("--force" in w and "chest" in w for w in res.warnings)
    assert res.heatmap is None and "heatmap" not in res.to_dict()
    assert "heatmap" not in res.timings
    res = generator.report(volume, question="Is there a renal cyst in this CT?", max_new_tokens=2)
    assert len(res.sections) == 1 and res.sections[0].region is None
    assert res.report == res.sections[0].text
    with pytest.raises(Mu2Error, match="region"):
        generator.report(volume, region="head")
    with pytest.raises(Mu2Error, match="--region all"):
        generator.report(volume, question="Any cyst?", region="all")
    with pytest.raises(Mu2Error, match="top_p"):
        generator.report(volume, do_sample=True, top_p=0.0)


def test_sampling_is_reproducible_per_seed(generator: ReportGenerator, real_ct_path: Path) -> None:
    volume = load_ct(real_ct_path)
    kw = dict(region="abdomen", max_new_tokens=4, do_sample=True, temperature=1.0, top_p=0.95)
    a = generator.report(volume, seed=3, **kw).report
    b = generator.report(volume, seed=3, **kw).report
    assert a == b
    state = torch.random.get_rng_state()
    generator.report(volume, seed=4, **kw)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG left alone


def test_generate_from_encoding_matches_model_generate(generator: ReportGenerator) -> None:
    """Encoding once and decoding from it gives the model's own generate() tokens."""
    model, proc = generator.model, generator.processor
    frames = torch.rand(
        2, *model.vision_tower.config.img_size, generator=torch.Generator().manual_seed(0)
    )
    questions = ["Describe the findings of the chest in this CT.", "Any cyst?"]
    batch = proc(questions)
    pv, fm = proc.pad_frames([frames, frames[:1]])  # second case: one frame, padded
    kw = dict(max_new_tokens=5, do_sample=False, pad_token_id=proc.tokenizer.pad_token_id)
    with torch.inference_mode():
        ref = model.generate(pixel_values=pv, frame_mask=fm, **batch, **kw)
        enc = model.encode_images(pv, fm, batch["question_ids"], batch["question_mask"])
        ours = _generate_from_encoding(model, enc, batch, **kw)
    assert torch.equal(ref, ours)


def test_missing_or_broken_model_dir_is_user_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(Mu2Error, match="no model at"):
        ReportGenerator(tmp_path / "nothing")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_model_dir.iterdir():
        if f.name != "model.safetensors":
            (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(Mu2Error, match="cannot load the model"):
        ReportGenerator(broken)
    with pytest.raises(Mu2Error, match="unknown device"):
        ReportGenerator(tiny_model_dir, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(Mu2Error, match="no CUDA GPU"):
            ReportGenerator(tiny_model_dir, device="cuda")


def test_heat_is_question_dependent_and_finite(
    generator: ReportGenerator, real_ct_path: Path
) -> None:
    volume = load_ct(real_ct_path)
    a = generator.report(volume, question="Is there a renal cyst?", max_new_tokens=1, heatmap=True)
    b = generator.report(volume, question="Describe the lungs.", max_new_tokens=1, heatmap=True)
    assert np.isfinite(a.heatmap).all()
    # The TTA conditions on the question, so the maps differ even for an untrained model.
    assert not np.allclose(a.heatmap, b.heatmap)


def test_dicom_folder_and_npy_inputs(
    generator: ReportGenerator, data_dir: Path, real_ct_path: Path, tmp_path: Path
) -> None:
    from mu2.generate.heatmap import save_heatmap_nifti

    dicom = load_ct(data_dir / "real-ct" / "example_ct_dicom")
    res = generator.report(dicom, region="abdomen", max_new_tokens=1, heatmap=True)
    assert res.input["format"] == "dicom" and res.heatmap.shape == dicom.shape
    out = nib.load(str(save_heatmap_nifti(dicom, res.heatmap, tmp_path / "d.nii.gz")))
    assert out.shape == tuple(dicom.source_shape)
    np.testing.assert_allclose(out.affine, dicom.source_affine, atol=1e-4)
    # the DICOM is stored LPS: peak_voxel indexes the written NIfTI (the stored grid),
    # peak_voxel_canonical the RAS grid of res.heatmap; they differ here
    heat = res.to_dict()["heatmap"]
    stored = out.get_fdata()
    assert stored[tuple(heat["peak_voxel"])] == pytest.approx(stored.max())
    assert res.heatmap[tuple(heat["peak_voxel_canonical"])] == res.heatmap.max()
    assert heat["peak_voxel"] != heat["peak_voxel_canonical"]
    # the DICOM headers give the study date (this anonymised series has no study UID, so
    # no ImagingStudy link); FHIR wants a zone with a time, so the date alone is kept
    assert res.input["study"] == {"datetime": "2022-12-08T00:00:00"}
    fhir = to_fhir(res)
    assert fhir["effectiveDateTime"] == "2022-12-08" and "imagingStudy" not in fhir
    DiagnosticReport.model_validate(fhir)
    npy = tmp_path / "ct.npy"
    np.save(npy, load_ct(real_ct_path).array[:, :, :40])
    res = generator.report(npy, region="abdomen", max_new_tokens=1)
    assert res.input["format"] == "npy" and res.input["shape"] == [122, 101, 40]
