"""The report's recovery figure from a recovery CSV and the base/pruned evaluation JSON."""

from __future__ import annotations

import json

from secateurs.evaluate.recovery import recovery_plot
from secateurs.train.recovery import write_rows


def test_recovery_plot_has_curve_and_reference_lines(tmp_path):
    rows = [{"step": s, "tokens_seen": 100 * s, "language": lang, "bits_per_byte": bpb, "nll": 1.0,
             "tokens": 10, "bytes": 40, "documents": 2, "seconds": 0.1}
            for s, bpb_en, bpb_zh in ((0, 3.0, 2.5), (2, 2.2, 2.0), (4, 2.0, 1.9))
            for lang, bpb in (("en", bpb_en), ("zh", bpb_zh))]
    write_rows(tmp_path / "recovery.csv", rows)
    metrics = {}
    for model, levels in (("base", {"en": 1.8, "zh": 1.7}), ("pruned", {"en": 2.9, "zh": 2.6})):
        metrics[model] = tmp_path / f"{model}.json"
        metrics[model].write_text(json.dumps({"bits_per_byte": levels}))
    data = recovery_plot(tmp_path / "recovery.csv", {**metrics, "healed": tmp_path / "none.json"},
                         tmp_path / "recovery.png")
    assert data["curve"]["en"] == [(0, 3.0), (200, 2.2), (400, 2.0)]
    assert data["references"] == {"base": {"en": 1.8, "zh": 1.7}, "pruned": {"en": 2.9, "zh": 2.6}}
    assert (tmp_path / "recovery.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
