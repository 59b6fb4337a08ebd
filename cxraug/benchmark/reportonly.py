"""``--report-only``: rebuild a benchmark's report from its stored runs, never training."""

from __future__ import annotations

from pathlib import Path

from cxraug.benchmark.config import REPORT_KEYS, BenchmarkConfig
from cxraug.benchmark.outfolder import MARKER, RESULT, check_format, check_same_data, run_dir, write_whole_report
from cxraug.benchmark.plan import RunRecord
from cxraug.benchmark.planning import make_plan
from cxraug.benchmark.predictions import check_predictions
from cxraug.benchmark.runkey import key_difference, run_key, same_key
from cxraug.benchmark.storedruns import load_run
from cxraug.classify.trainset import split_patients
from cxraug.errors import UserError
from cxraug.fsutil import read_json
from cxraug.progress import Reporter


def report_only(
    out: Path,
    sets: list[str] | None = None,
    config_file: Path | None = None,
    data_path: Path | None = None,
    reporter: Reporter | None = None,
):
    """Rebuild every table, plot and verdict of ``out`` from its stored predictions, with the
    stored options overridden by reporting options only (never retrains anything)."""
    from cxraug.benchmark.aggregate import build_report
    from cxraug.benchmark.config import parse_set
    from cxraug.config import load_config_file, validated

    out = Path(out)
    if not (out / MARKER).is_file():
        raise UserError(f"--report-only {out} is not a benchmark output folder (no {MARKER})")
    stored = read_json(out / MARKER)
    if not isinstance(stored, dict):
        raise UserError(f"{out / MARKER} is not a benchmark record (not a JSON object); run the benchmark again")
    check_format(out, stored)
    over = {**load_config_file(config_file), **parse_set(sets or [])}
    training = sorted(k for k in over if k not in REPORT_KEYS)
    if training:
        raise UserError(
            f"--report-only changes reporting options only ({', '.join(REPORT_KEYS)}); "
            f"{', '.join(training)} would need training: run the benchmark without --report-only"
        )
    cfg = validated(BenchmarkConfig, {**stored.get("config", {}), **over}, "option")
    path = Path(data_path) if data_path else Path(stored.get("data", {}).get("path", ""))
    plan = make_plan(path, cfg, trained=stored)
    check_same_data(out, plan.data, stored)
    plan.seeds = [s for s in plan.seeds if s in stored.get("seeds", [])]
    labels, patients = plan.data.labels("test"), split_patients(plan.data, "test")
    records, missing = [], []
    for arm in plan.arms:
        for seed in plan.seeds:
            path = run_dir(out, arm.name, seed)
            if not (path / RESULT).is_file():
                missing.append(str(path))
                continue
            result, preds = load_run(path)
            # The report says what was run: every run's own key must be what benchmark.json says.
            old = result.get("key") if isinstance(result.get("key"), dict) else {}
            expected = run_key(plan, arm, seed, int(old.get("world_size") or 1))
            if not same_key(old, expected):
                raise UserError(
                    f"{path} was trained with other settings than {out / MARKER} records "
                    f"({key_difference(old, expected)}); it cannot be reported as part of this benchmark: "
                    "remove that run folder and run the benchmark again"
                )
            check_predictions(path, preds, "test", labels, patients)
            records.append(RunRecord(arm.name, seed, result, preds, reused=True))
    if missing:
        raise UserError(
            f"{len(missing)} of {len(plan.arms) * len(plan.seeds)} runs are not finished (e.g. {missing[0]}); "
            "run the benchmark command again to finish them"
        )
    report = build_report(plan, records, plan.real_index, plan.train_labels, patients, reporter,
                          declared=stored.get("question"))  # fmt: skip
    write_whole_report(report, out)
    return report
