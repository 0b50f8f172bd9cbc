"""The plan's measured candidates as markdown, for the report (no torch: the report reads it)."""

from __future__ import annotations


def candidate_table(plan: dict) -> str:
    """The plan's measured candidates (or greedy steps) as a markdown table; "" if none."""
    if plan.get("candidates"):
        rows = plan["candidates"]
        langs = list(rows[0]["losses"])
        base = plan["selection"]["full_model_loss"]
        head = ["removed layers", "proposed by"] + [f"loss {l} (+Δ)" for l in langs]
        lines = ["| " + " | ".join(head + ["objective", ""]) + " |",
                 "|" + "---|" * (len(head) + 2)]
        for row in sorted(rows, key=lambda r: r["objective"]):
            who = "; ".join(f"{p['metric']} @ {p['calibration']}" for p in row["proposed_by"])
            cells = [f"{row['losses'][l]:.3f} (+{row['losses'][l] - base[l]:.3f})" for l in langs]
            lines.append("| " + " | ".join([_layers(row["remove"]), who, *cells,
                                            f"{row['objective']:.3f}",
                                            "**chosen**" if row.get("chosen") else ""]) + " |")
        return "\n".join(lines)
    if plan.get("steps"):
        langs = list(plan["steps"][0]["losses"])
        lines = ["| step | removed layer | " + " | ".join(f"loss {l}" for l in langs)
                 + " | objective |", "|---|---|" + "---|" * (len(langs) + 1)]
        for i, step in enumerate(plan["steps"], 1):
            lines.append(f"| {i} | {step['removed']} | "
                         + " | ".join(f"{step['losses'][l]:.3f}" for l in langs)
                         + f" | {step['objective']:.3f} |")
        return "\n".join(lines)
    return ""


def _layers(remove: list[int]) -> str:
    return ", ".join(map(str, remove)) or "none"
