"""Write docs/validity.md: the validity cards of the detectors on the reference corpora beside the checkout.

    python docs/make_validity.py [--data ../shared/data] [--db runs/validity.db] [--only NAME ...]

Imports the corpora once into `--db` (kept for reruns), runs each check below as a `sim validate` command with
`--out`, and stitches the reports it writes (each opens with its own command) into docs/validity.md, with the
ROC figures in docs/validity/. Every number in that file comes from these commands.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CORPORA = {  # dataset: (importer, file under --data, importer options)
    "persuasionforgood": ("persuasionforgood", "conversations/persuasionforgood/full_dialog.csv", {}),
    "casino": ("casino", "conversations/casino/casino_dialogues.jsonl", {}),
    "dealornodeal": ("dealornodeal", "conversations/dealornodeal/dealornodeal_dialogues.jsonl", {}),
    "dailydialog": ("dailydialog", "conversations/dailydialog/dailydialog_sample_2624.jsonl", {}),
    "spp_gpt4": (
        "spp", "conversations/artifacts-llmgendata-spp/logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl",
        {"puzzles": "conversations/artifacts-llmgendata-spp/logic_grid_puzzle_200.jsonl"},
    ),
}
# Role-play generated here by the embedded model (SmolLM2-135M): CAMEL roles, markers and all.
RUN = "roleplay-validity"
GENERATE = ["scenario.n_episodes=24", "scenario.max_turns=6", "scenario.max_tokens=80", f"run.id={RUN}", "runner.analyze=[]", "runner.progress=false"]
# name: (what the check shows, `sim validate` arguments)
CHECKS = {
    "pfg_role_drift": (
        "Role drift on PersuasionForGood (persuader and persuadee): target AUC >= 0.85 and false flags <= 5%.",
        ["--dataset", "persuasionforgood", "--analyzer", "role_drift", "--kinds", "swap"],
    ),
    "casino_role_drift": (
        "Role drift on CaSiNo: both negotiators have the same role, so drift must come out not identifiable.",
        ["--dataset", "casino", "--analyzer", "role_drift", "--kinds", "swap"],
    ),
    "dealornodeal_role_drift": (
        "Role drift on Deal or No Deal (1,000 of its 6,173 dialogues): symmetric roles again.",
        ["--dataset", "dealornodeal", "--analyzer", "role_drift", "--kinds", "swap", "--sample", "1000"],
    ),
    "spp_role_drift": (
        "Role drift on the GPT-4 Solo-Performance-Prompting transcripts (personas): reported, no target.",
        ["--dataset", "spp_gpt4", "--analyzer", "role_drift", "--kinds", "swap"],
    ),
    "roleplay_markers_and_drift": (
        "Generated CAMEL role-play (SmolLM2-135M, 24 conversations of 6 turns): role_flip must find every inserted "
        "marker (its flags in untouched conversations are the model's own role flips); role drift is reported, no target.",
        ["--run", RUN, "--kinds", "marker,swap"],
    ),
    "pfg_digression": (
        "Off-task turns (the built-in small talk) in PersuasionForGood: target AUC >= 0.90.",
        ["--dataset", "persuasionforgood", "--analyzer", "digression", "--kinds", "digression"],
    ),
    "pfg_digression_dailydialog": (
        "The same with DailyDialog turns as the off-task talk.",
        ["--dataset", "persuasionforgood", "--analyzer", "digression", "--kinds", "digression", "--distractors", "dailydialog"],
    ),
    "spp_digression": (
        "Off-task turns in the SPP transcripts: target AUC >= 0.90.",
        ["--dataset", "spp_gpt4", "--analyzer", "digression", "--kinds", "digression"],
    ),
    "pfg_loops": (
        "Near-copy loops in PersuasionForGood: target recall >= 0.9 at <= 5% false flags.",
        ["--dataset", "persuasionforgood", "--analyzer", "conversation_stats", "--kinds", "loop"],
    ),
}
INTRO = """# Validity of the detectors

Each detector that flags turns (`role_drift`, `digression`, `conversation_stats` loops, `role_flip`) is checked
by a known-answer test, `sim validate`: a copy of a real corpus is perturbed in a scratch store (in a random half
of the conversations, about 20% of the turns after the first two are replaced), the analyzer runs on the copy
with its default settings, and its per-turn score and flag are scored against the replaced turns. AUC is the
area under the ROC curve of the score over all scored turns; precision, recall and F1 are those of the flag;
false flags are the flagged share of the turns of the untouched conversations. Every interval is a 95%
interval that counts conversations, not turns, since turns of one conversation are not independent: for AUC
and F1 the expanded percentile interval from resampling conversations (300 and 2,000 resamples); for
precision, recall and false flags, rates of turns, Clopper-Pearson at the design-effect sample size
([statistics.md](statistics.md)). The perturbations:

- `swap`: the turn is replaced by a turn of another role from another conversation of the same corpus;
- `digression`: by an off-task turn, from a built-in list of small talk or from another corpus (`--distractors`);
- `loop`: by a near copy (one word dropped, doubled or moved) of an earlier turn of the same speaker;
- `marker`: a CAMEL turn gets its partner's marker (`Instruction:` in an assistant's turn).

This file is written by `python docs/make_validity.py`; each section below opens with the command that
produced its numbers.
"""


def prepare(db: Path, data: Path) -> None:
    """Import every corpus not yet in the database, and generate the role-play run if it is missing."""
    for dataset, (importer, relative, options) in CORPORA.items():
        args = ["import", importer, str(data / relative), "--db", str(db), "--dataset", dataset]
        for key, value in options.items():
            args += ["-o", f"{key}={data / value}"]
        subprocess.run([sys.executable, "-m", "sim", *args], check=True, stdout=subprocess.DEVNULL)
    with sqlite3.connect(db) as conn:
        generated = conn.execute("SELECT count(*) FROM runs WHERE id = ?", [RUN]).fetchone()[0]
    if not generated:
        subprocess.run([sys.executable, "-m", "sim", "run", *GENERATE, f"store.path={db}"], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    """Run the checks and write docs/validity.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DOCS.parents[1] / "shared" / "data")
    parser.add_argument("--db", type=Path, default=Path("runs/validity.db"))
    parser.add_argument("--only", nargs="*", help="Run only these checks (the others keep their last section).")
    args = parser.parse_args()
    prepare(args.db, args.data)
    sections = DOCS / "validity"
    sections.mkdir(exist_ok=True)
    for name, (_, check) in CHECKS.items():
        if args.only and name not in args.only:
            continue
        out = Path("runs") / "validity" / name
        command = [sys.executable, "-m", "sim", "validate", "--db", str(args.db), *check, "--out", str(out)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        report = (out / "validity.md").read_text().replace("# Validity of the detectors\n\n", "")
        (sections / f"{name}.md").write_text(report.replace(f" --out {out}", ""))
        if (out / "roc.png").exists():
            shutil.copyfile(out / "roc.png", sections / f"{name}.png")
    parts = [INTRO]
    for name, (heading, _) in CHECKS.items():
        section = sections / f"{name}.md"
        if section.exists():
            figure = f"\n![ROC curves](validity/{name}.png)\n" if (sections / f"{name}.png").exists() else ""
            parts.append(f"## {heading}\n\n{section.read_text().strip()}\n{figure}")
    (DOCS / "validity.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
