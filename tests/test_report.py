"""The reporting layer: seed statistics checked by hand, Table 1's layout, plots, collect on real smoke cells,
stored baselines that refuse a silent overwrite, and the comparison of a new method.

Run: nice -n 10 pytest tests/test_report.py -q
"""

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdar.cli import main
from sdar.configlib import ConfigError
from sdar.methods import METHODS
from sdar.report import stats
from sdar.report.baselines import kernel_notes, store
from sdar.report.collect import RESULT_COLUMNS, STEP_COLUMNS, collect, table1_metrics, write_collected
from sdar.report.compare import COLUMNS, compare_rows, snakemake_command
from sdar.report.naming import HEADLINE, TABLE1_METHODS, method_from_slug, method_slug, metric_columns
from sdar.report.plots import seed_band, write_plots
from sdar.report.tables import (
    build_table1,
    fmt_mean_std,
    fmt_value,
    latex_escape,
    read_reference,
    to_csv,
    to_latex,
    to_markdown,
)
from tests.conftest import REPO

REFERENCE = REPO / "results" / "reference" / "paper_table1.csv"


# ------------------------------------------------------------------------------------------------------
# synthetic inputs


def results_frame(rows, profile="mini"):
    """rows: (method, env, model, seed, metric, value) -> a results.csv frame."""
    return pd.DataFrame([[profile, *r] for r in rows], columns=RESULT_COLUMNS)


def full_cells(model, values_by_method, seeds=(0, 1, 2), spread=(0.0, 1.0, 2.0)):
    """Every Table 1 metric of every method: value = base + spread[seed]."""
    return [
        (m, env, model, s, metric, base + spread[i])
        for m, base in values_by_method.items()
        for env, metric in metric_columns()
        for i, s in enumerate(seeds)
    ]


def paper_ordering_scores(env):
    """Mean rank of each Table 1 method over the paper's models on the env's headline metric (by hand:
    pandas rank per model, then the mean)."""
    ref = pd.read_csv(REFERENCE)
    ref = ref[(ref.env == env) & (ref.metric == HEADLINE[env])]
    ranks = ref.assign(r=ref.groupby("model").value.rank()).groupby("method").r.mean()
    return ranks.to_dict()


# ------------------------------------------------------------------------------------------------------
# stats, by hand


def test_mean_std_sample_std_and_single_seed():
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)  # sample std: sqrt(((1)^2 + 0 + 1^2) / 2) = 1
    assert stats.mean_std([5.0]) == (5.0, 0.0, 1)
    assert stats.mean_std([4.0, float("nan"), 6.0]) == (5.0, math.sqrt(2.0), 2)
    m, s, n = stats.mean_std([])
    assert math.isnan(m) and math.isnan(s) and n == 0


def test_kendall_tau_of_known_permutations():
    assert stats.kendall_tau([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]) == pytest.approx(
        0.8
    )  # 9 concordant, 1 discordant
    assert stats.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # tau-b with a tie in x: pairs (1,3), (2,3) concordant, (1,2) tied in x: 2 / sqrt((3 - 1) * 3)
    assert stats.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(stats.kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(stats.kendall_tau([1], [1]))


def test_mean_ranks_over_groups():
    ranks = stats.mean_ranks(
        {"a": {"x": 1.0, "y": 2.0, "z": 3.0}, "b": {"x": 3.0, "y": 2.0, "z": 1.0, "w": 9.0}}
    )
    assert ranks == {"x": 2.0, "y": 2.0, "z": 2.0}  # w is not in every group
    assert stats.mean_ranks({"a": {"x": 1.0, "y": 1.0, "z": 5.0}}) == {"x": 1.5, "y": 1.5, "z": 3.0}


def test_bootstrap_ci_contains_the_true_difference_and_is_symmetric():
    base = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # symmetric around its mean
    new = base + 2.5
    diff, lo, hi = stats.bootstrap_diff_ci(new, base, n_boot=20_000, seed=0)
    assert diff == pytest.approx(2.5)
    assert lo < 2.5 < hi
    assert (hi - diff) == pytest.approx(diff - lo, rel=0.05)  # symmetric data, symmetric interval
    assert 1.0 < hi - lo < 4.0  # about 2 * 1.96 * sqrt(2 * 2 / 5) = 3.5 wide, not degenerate
    assert stats.bootstrap_diff_ci(new, base, seed=0) == stats.bootstrap_diff_ci(new, base, seed=0)
    assert stats.bootstrap_diff_ci(new, base, seed=0) != stats.bootstrap_diff_ci(new, base, seed=1)
    one = stats.bootstrap_diff_ci([3.0], [1.0])  # one seed each: a difference, no interval
    assert one[0] == 2.0 and math.isnan(one[1]) and math.isnan(one[2])
    assert math.isnan(stats.bootstrap_diff_ci([3.0, 4.0, 5.0], [1.0])[1])  # one baseline seed: none either
    assert all(math.isnan(v) for v in stats.bootstrap_diff_ci([], [1.0]))


def test_probability_of_improvement():
    assert stats.prob_improvement([5, 6, 7], [1, 2, 3]) == 1.0
    assert stats.prob_improvement([2, 2], [2, 2, 2]) == 0.5  # all ties count half
    assert stats.prob_improvement([1, 2], [3, 4]) == 0.0
    assert stats.prob_improvement([1, 3], [2]) == 0.5
    assert stats.prob_improvement([2, 3], [2]) == 0.75  # (0.5 + 1) / 2
    assert math.isnan(stats.prob_improvement([], [1]))
    assert math.isnan(stats.prob_improvement([3], [1]))  # one pair: which seed won, not a probability


def test_formatting():
    assert fmt_mean_std(12.345, 1.0) == "12.3 ± 1.0"
    assert fmt_mean_std(5.0, 0.0) == "5.0 ± 0.0"
    assert fmt_mean_std(float("nan"), float("nan")) == "–"
    assert fmt_value(-3.44, signed=True) == "-3.4" and fmt_value(1.25, signed=True) == "+1.2"
    assert fmt_value(None) == "–"
    assert latex_escape("a_b & 50% #1 {x} ± – Δ") == r"a\_b \& 50\% \#1 \{x\} $\pm$ -- $\Delta$"


def test_method_slugs_round_trip():
    assert (
        method_slug("skill_grpo*") == "skill_grpo_star"
        and method_from_slug("skill_prompt_star") == "skill_prompt*"
    )
    for name in METHODS:
        assert method_from_slug(method_slug(name)) == name
    for bad in ("a*b", "x_star", "../x", ""):
        with pytest.raises(ValueError):
            method_slug(bad)


# ------------------------------------------------------------------------------------------------------
# eval.json -> Table 1 metrics


def test_table1_metrics_map_eval_keys_to_percent():
    alf = {
        "env": "alfworld",
        "success_rate": 0.25,
        "pick_success_rate": 0.5,
        "look_success_rate": float("nan"),
    }
    assert table1_metrics(alf) == {"pick": 50.0, "all": 25.0}  # NaN / absent types have no row
    qa = {"env": "search_qa", "success_rate": 0.9, "nq_success_rate": 0.5, "popqa_success_rate": 0.25}
    assert table1_metrics(qa) == {"nq": 50.0, "popqa": 25.0, "avg": 37.5}  # unweighted mean of the sources
    ws = {"env": "webshop", "success_rate": 0.125, "score": 0.5}
    assert table1_metrics(ws) == {"score": 50.0, "success": 12.5}
    with pytest.raises(ConfigError, match="unknown env"):
        table1_metrics({"env": "atari"})


# ------------------------------------------------------------------------------------------------------
# Table 1


def test_table1_layout_reported_numbers_deltas_and_tau():
    ref = read_reference(REFERENCE)
    refd = {(r.model, r.method, r.env, r.metric): r.value for r in ref.itertuples()}
    # the paper's model: reproduced = reported + 1 + spread (mean offset = +2.0)
    paper_rows = [
        (m, env, "qwen3-1.7b", s, k, refd[("qwen3-1.7b", m, env, k)] + 1.0 + s)
        for m in TABLE1_METHODS
        for env, k in metric_columns()
        for s in (0, 1, 2)
    ]
    # a tiny model ordered exactly like the paper's mean ranks on ALFWorld and reversed on WebShop
    alf, web = paper_ordering_scores("alfworld"), paper_ordering_scores("webshop")
    tiny_rows = [
        (m, "alfworld", "tiny-qwen3", s, "all", 10.0 * alf[m] + s) for m in TABLE1_METHODS for s in (0, 1)
    ]
    tiny_rows += [
        (m, "webshop", "tiny-qwen3", s, "success", -10.0 * web[m]) for m in TABLE1_METHODS for s in (0, 1)
    ]
    table = build_table1(results_frame(paper_rows + tiny_rows), ref)

    assert [b.model for b in table.blocks] == ["qwen3-1.7b", "tiny-qwen3"]
    paper, tiny = table.blocks
    assert paper.matched and not tiny.matched
    assert paper.tau["alfworld"][0] == pytest.approx(1.0)  # same ordering as its own reported numbers
    assert tiny.tau["alfworld"] == (pytest.approx(1.0), 10)
    assert tiny.tau["webshop"][0] == pytest.approx(-1.0)
    assert math.isnan(tiny.tau["search_qa"][0])  # no Search-QA results

    md = to_markdown(table)
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    assert header.split(" | ")[1:4] == ["ALFWorld Pick", "ALFWorld Look", "ALFWorld Clean"]
    assert header.rstrip(" |").endswith("Search-QA Avg | WebShop Score | WebShop Acc")
    assert md.index("## qwen3-1.7b") < md.index("## tiny-qwen3")
    paper_md, tiny_md = md.split("## tiny-qwen3")
    labels = [line.split(" | ")[0].lstrip("| ") for line in paper_md.splitlines() if line.startswith("| ")][
        2:
    ]
    assert labels[:3] == ["Vanilla", "↳ paper", "↳ Δ"]
    assert [x for x in labels if not x.startswith(("↳", "Kendall"))] == [
        METHODS[m].label for m in TABLE1_METHODS
    ]
    sdar_all = refd[("qwen3-1.7b", "sdar", "alfworld", "all")]
    sdar_line = next(line for line in paper_md.splitlines() if line.startswith("| SDAR |"))
    assert sdar_line.split(" | ")[7] == fmt_mean_std(sdar_all + 2.0, 1.0)  # mean of +1, +2, +3; sample std 1
    assert "| ↳ Δ | +2.0 | +2.0 |" in paper_md
    assert "↳ paper" not in tiny_md and "↳ Δ" not in tiny_md
    tau_line = next(line for line in tiny_md.splitlines() if line.startswith("| Kendall τ"))
    assert "1.00" in tau_line and "-1.00" in tau_line
    assert (
        "averaged over its models" in md.split("## qwen3-1.7b")[0]
    )  # the note says what tiny tau is against
    tiny_vanilla = next(line for line in tiny_md.splitlines() if line.startswith("| Vanilla |"))
    assert tiny_vanilla.split(" | ")[1] == "–"  # missing cell

    df = pd.read_csv(io.StringIO(to_csv(table)))
    assert list(df.columns) == ["model", "method", "label", "row", *(f"{e}/{k}" for e, k in metric_columns())]
    delta = df[(df.model == "qwen3-1.7b") & (df.method == "sdar") & (df.row == "delta")]
    assert delta["alfworld/all"].item() == pytest.approx(2.0)
    assert set(df[df.model == "tiny-qwen3"].row) == {"mean", "std", "seeds", "kendall_tau"}

    tex = to_latex(table)
    assert (
        r"\multicolumn{7}{c}{ALFWorld} & \multicolumn{8}{c}{Search-QA} & \multicolumn{2}{c}{WebShop}" in tex
    )
    assert r"\textit{qwen3-1.7b}" in tex and r"\quad $\Delta$" in tex and "$\\pm$" in tex
    assert tex.count("\\\\") == 2 + 2 + 10 * 3 + 1 + 10 + 1  # header rows, 2 model rows, method rows, tau


def test_table1_rejects_mixed_profiles_and_empty_results():
    ref = read_reference(REFERENCE)
    mixed = pd.concat([results_frame([("grpo", "webshop", "m", 0, "score", 1.0)], "mini"),
                       results_frame([("grpo", "webshop", "m", 0, "score", 1.0)], "smoke")])  # fmt: skip
    with pytest.raises(ConfigError, match="mix profiles"):
        build_table1(mixed, ref)
    with pytest.raises(ConfigError, match="no rows"):
        build_table1(results_frame([]), ref)


def test_tables_cli_writes_three_files_and_fails_clearly(tmp_path, capsys):
    res = tmp_path / "results.csv"
    results_frame(full_cells("tiny-qwen3", {"grpo": 10.0, "sdar": 20.0})).to_csv(res, index=False)
    assert main(["tables", "--results", str(res), "--out", str(tmp_path / "t")]) == 0
    for ext in ("csv", "md", "tex"):
        assert (tmp_path / "t" / f"table1.{ext}").stat().st_size > 0
    assert main(["tables", "--results", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "t")]) == 2
    assert "nope.csv not found" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert main(["tables", "--results", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "t")]) == 2
    assert "missing columns" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------
# plots


def steps_frame(rows):
    """rows: (method, env, model, seed, step, metric, value)."""
    return pd.DataFrame([["mini", *r] for r in rows], columns=STEP_COLUMNS)


def test_seed_band_is_mean_min_max_per_step():
    df = steps_frame([("sdar", "alfworld", "m", s, step, "eval/success_rate", v)
                      for s, vals in enumerate([[0, 10], [20, 40], [40, 70]]) for step, v in enumerate(vals)])  # fmt: skip
    band = seed_band(df)
    assert (
        band["mean"].tolist() == [20.0, 40.0]
        and band["lo"].tolist() == [0, 10]
        and band["hi"].tolist() == [40, 70]
    )


def test_plots_write_png_and_pdf_with_single_seed_and_missing_metrics(tmp_path):
    rows = []
    for method in ("grpo", "grpo_opsd", "sdar"):
        for seed in (0, 1, 2) if method != "grpo_opsd" else (0,):  # grpo_opsd: a single seed
            for step in range(4):
                rows.append(
                    (method, "alfworld", "tiny-qwen3", seed, step, "eval/success_rate", 10.0 * step + seed)
                )
                if method != "grpo":  # GRPO has no teacher gap
                    rows.append(
                        (
                            method,
                            "alfworld",
                            "tiny-qwen3",
                            seed,
                            step,
                            "sdar/teacher_old_gap_mean",
                            -0.1 * seed,
                        )
                    )
    rows.append(("grpo", "webshop", "tiny-qwen3", 0, 0, "eval/success_rate", 5.0))  # gap panel with no data
    paths = write_plots(steps_frame(rows), tmp_path, envs=["alfworld", "webshop"], models=["tiny-qwen3"])
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{k}_{e}_tiny-qwen3.{x}" for k in ("gap", "success") for e in ("alfworld", "webshop")
                           for x in ("png", "pdf"))  # fmt: skip
    for p in paths:
        head = p.read_bytes()[:8]
        assert p.stat().st_size > 1000 and head[:4] in (b"\x89PNG", b"%PDF")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


# ------------------------------------------------------------------------------------------------------
# collect on real smoke cells


@pytest.fixture(scope="module")
def smoke_cells(tmp_path_factory):
    """Two tiny cells of the smoke profile: SDAR trained one step on WebShop, and Vanilla evaluated."""
    from sdar import configlib, models

    root = tmp_path_factory.mktemp("report_cells")
    cache, corpus = root / "envs", root / "corpus.txt"
    assert main(["envs", "corpus", "--out", str(corpus), "--episodes", "2", "--cache", str(cache)]) == 0
    cfg = configlib.build(
        models.ModelsConfig, {"tiny_qwen3": {"num_layers": 1, "hidden_size": 32, "intermediate_size": 64}}
    )
    models.build("tiny-qwen3", root / "model", cfg, corpus=corpus.read_text().splitlines())
    common = ["--env", "webshop", "--model", "tiny-qwen3", "--seed", "0", "--model-dir", str(root / "model"),
              "--profile", "smoke", "--set", f"paths.env_cache={cache}", "--set", "eval.episodes=2"]  # fmt: skip
    sdar_dir, vanilla_dir = root / "runs" / "sdar", root / "runs" / "vanilla"
    assert main(["train", "--method", "sdar", *common, "--out", str(sdar_dir), "--set", "train.steps=1",
                 "--set", "train.eval_episodes=2"]) == 0  # fmt: skip
    assert main(["evaluate", "--run", str(sdar_dir)]) == 0
    assert main(["evaluate", "--method", "vanilla", *common, "--out", str(vanilla_dir)]) == 0
    return root, [sdar_dir, vanilla_dir]


def test_collect_on_real_cells(smoke_cells, tmp_path):
    _, dirs = smoke_cells
    out = tmp_path / "report"
    assert main(["collect", "--profile", "smoke", "--out", str(out), *map(str, dirs)]) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert list(results.method.unique()) == ["vanilla", "sdar"]  # Table 1's row order
    for d in dirs:
        ev = json.loads((d / "eval.json").read_text())
        sel = results[results.method == ev["method"]].set_index("metric").value
        assert sel.to_dict() == pytest.approx(
            {"score": 100 * ev["score"], "success": 100 * ev["success_rate"]}
        )
    steps = pd.read_csv(out / "steps.csv")
    assert list(steps.columns) == STEP_COLUMNS and set(steps.method) == {"sdar"}  # vanilla does not train
    lines = [json.loads(x) for x in (dirs[0] / "metrics.jsonl").read_text().splitlines()]
    evals = steps[steps.metric == "eval/success_rate"]
    assert evals.step.tolist() == [r["step"] for r in lines if "eval/success_rate" in r] == [0, 1]
    assert evals.value.tolist() == pytest.approx(
        [100 * r["eval/success_rate"] for r in lines if "eval/success_rate" in r]
    )
    gap = steps[steps.metric == "sdar/teacher_old_gap_mean"]
    assert gap.value.tolist() == pytest.approx([lines[0]["sdar/teacher_old_gap_mean"]])
    manifests = [json.loads(x) for x in (out / "manifests.jsonl").read_text().splitlines()]
    assert [(m["method"], m["run_dir"]) for m in manifests] == [
        ("vanilla", str(dirs[1])),
        ("sdar", str(dirs[0])),
    ]
    assert all(m["run"]["git"]["sha"] and m["panel_sha256"] for m in manifests)
    # the report verbs run on these real files
    assert main(["tables", "--results", str(out / "results.csv"), "--out", str(tmp_path / "tables")]) == 0
    assert "| SDAR |" in (tmp_path / "tables" / "table1.md").read_text()
    assert main(["plots", "--steps", str(out / "steps.csv"), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "gap_webshop_tiny-qwen3.pdf").stat().st_size > 0


def test_collect_bad_input(smoke_cells, tmp_path, capsys):
    _, dirs = smoke_cells
    assert main(["collect", "--out", str(tmp_path), str(tmp_path / "missing")]) == 2
    assert "no eval.json" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="expected 'mini'"):
        collect(dirs, "mini")
    with pytest.raises(ConfigError, match="same cell"):
        collect([dirs[0], dirs[0]])
    assert not (tmp_path / "results.csv").exists()


# ------------------------------------------------------------------------------------------------------
# stored baselines


def write_report(directory: Path, results: pd.DataFrame, manifests=()):
    write_collected(directory, results, steps_frame([]), list(manifests))
    return directory


def test_baselines_store_refuses_overwrite_and_keeps_old_files(tmp_path, capsys):
    first = write_report(tmp_path / "r1", results_frame(full_cells("tiny-qwen3", {"grpo": 10.0})))
    second = write_report(tmp_path / "r2", results_frame(full_cells("tiny-qwen3", {"grpo": 50.0})))
    dest = tmp_path / "baselines" / "mini"
    assert main(["baselines", "store", "--profile", "mini", "--from", str(first), "--to", str(dest)]) == 0
    stored = {p.name: p.read_bytes() for p in dest.iterdir()}
    assert sorted(stored) == ["README.md", "manifests.jsonl", "results.csv", "steps.csv"]
    assert stored["results.csv"] == (first / "results.csv").read_bytes()
    assert "| GRPO (`grpo`) | alfworld | tiny-qwen3 | 0, 1, 2 | ? |" in stored["README.md"].decode()

    assert main(["baselines", "store", "--profile", "mini", "--from", str(second), "--to", str(dest)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == stored  # untouched

    assert (
        main(
            [
                "baselines",
                "store",
                "--profile",
                "mini",
                "--from",
                str(second),
                "--to",
                str(dest),
                "--overwrite",
            ]
        )
        == 0
    )
    assert (dest / "results.csv").read_bytes() == (second / "results.csv").read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mini"]  # no temp or backup dirs left

    with pytest.raises(ConfigError, match="not 'smoke'"):
        store("smoke", second, tmp_path / "other")
    assert (
        main(["baselines", "store", "--profile", "mini", "--from", str(tmp_path / "none"), "--to", str(dest)])
        == 2
    )
    assert "results.csv not found" in capsys.readouterr().err


def manifest(method, env, seed, panel="p1", tasks="t1"):
    return {"method": method, "env": env, "model": "tiny-qwen3", "seed": seed, "profile": "mini",
            "panel_sha256": panel, "tasks_sha256": tasks, "run_dir": f"runs/{method}/{env}/{seed}", "run": None}  # fmt: skip


def test_baselines_store_add_joins_cells_refuses_duplicates_and_other_panels(tmp_path, capsys):
    """A grid stored over two sittings: GRPO seeds 0-1 first, then seed 2 and SDAR seed 0 are added."""
    dest = tmp_path / "baselines" / "mini_long"
    first = write_report(
        tmp_path / "r1",
        results_frame([("grpo", "webshop", "tiny-qwen3", s, "acc", 40.0 + s) for s in (0, 1)]),
        [manifest("grpo", "webshop", s) for s in (0, 1)],
    )
    assert (
        main(["baselines", "store", "--profile", "mini", "--from", str(first), "--to", str(dest), "--add"])
        == 0
    )
    rows = [
        ("sdar", "webshop", "tiny-qwen3", 0, "acc", 50.0),
        ("grpo", "webshop", "tiny-qwen3", 2, "acc", 42.0),
    ]
    second = write_report(
        tmp_path / "r2", results_frame(rows), [manifest("sdar", "webshop", 0), manifest("grpo", "webshop", 2)]
    )
    assert (
        main(["baselines", "store", "--profile", "mini", "--from", str(second), "--to", str(dest), "--add"])
        == 0
    )
    res = pd.read_csv(dest / "results.csv")
    # collect's order: methods table order (GRPO before SDAR), then seed
    assert list(zip(res.method, res.seed, res.value)) == [
        ("grpo", 0, 40.0),
        ("grpo", 1, 41.0),
        ("grpo", 2, 42.0),
        ("sdar", 0, 50.0),
    ]
    man = [json.loads(x) for x in (dest / "manifests.jsonl").read_text().splitlines()]
    assert [(m["method"], m["seed"]) for m in man] == [("grpo", 0), ("grpo", 1), ("grpo", 2), ("sdar", 0)]
    text = (dest / "README.md").read_text()
    assert "| GRPO (`grpo`) | webshop | tiny-qwen3 | 0, 1, 2 |" in text and "Cells: 4" in text
    assert "--configfile config/mini_long.yaml" in text and "--to results/baselines/mini_long" in text
    stored = {p.name: p.read_bytes() for p in dest.iterdir()}

    again = write_report(tmp_path / "r3", results_frame([("grpo", "webshop", "tiny-qwen3", 1, "acc", 99.0)]),
                         [manifest("grpo", "webshop", 1)])  # fmt: skip
    assert (
        main(["baselines", "store", "--profile", "mini", "--from", str(again), "--to", str(dest), "--add"])
        == 2
    )
    assert "grpo/webshop/tiny-qwen3/1" in capsys.readouterr().err
    other = write_report(tmp_path / "r4", results_frame([("opsd", "webshop", "tiny-qwen3", 0, "acc", 30.0)]),
                         [manifest("opsd", "webshop", 0, tasks="t2")])  # fmt: skip
    assert (
        main(["baselines", "store", "--profile", "mini", "--from", str(other), "--to", str(dest), "--add"])
        == 2
    )
    assert "not comparable" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == stored  # untouched

    args = [
        "baselines",
        "store",
        "--profile",
        "mini",
        "--from",
        str(again),
        "--to",
        str(dest),
        "--add",
        "--overwrite",
    ]
    assert main(args) == 0
    res = pd.read_csv(dest / "results.csv")
    assert list(zip(res.method, res.seed, res.value)) == [
        ("grpo", 0, 40.0),
        ("grpo", 1, 99.0),
        ("grpo", 2, 42.0),
        ("sdar", 0, 50.0),
    ]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mini_long"]


def warm_start(directory: Path, weights: bytes) -> Path:
    """A warm start's files as `sdar-bench warmstart` leaves them (the store reads files, never weights)."""
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(weights)
    (directory / "warmstart.json").write_text('{"steps": 1500}\n')
    (directory / "config.resolved.yaml").write_text("warmstart: {max_steps: 1500}\n")
    return directory


def on(m: dict, kernels: str) -> dict:
    """`m` as run on CPU kernels `kernels` (run.json hardware.cpu_capability)."""
    return {**m, "run": {**(m["run"] or {}), "hardware": {"cpu_capability": kernels}}}


def test_kernel_notes_name_cells_read_on_other_cpu_kernels():
    old = [on(manifest("vanilla", "webshop", s), "AVX2") for s in (0, 1)] + [manifest("grpo", "alfworld", 0)]
    new = [
        on(manifest("grpo", "webshop", 0), "AVX2"),  # same kernels: no note
        on(manifest("sdar", "webshop", 1), "AVX512"),  # other kernels than the stored webshop cells
        on(manifest("sdar", "alfworld", 0), "AVX512"),  # the stored alfworld cell does not record its kernels
        on(manifest("sdar", "search_qa", 0), "AVX512"),  # nothing stored for search_qa
        manifest("opsd", "webshop", 0),  # no record: not compared
    ]
    (note,) = kernel_notes(new, old)
    assert note.startswith(
        "note: sdar/webshop/tiny-qwen3/seed 1 ran on AVX512 CPU kernels, the stored webshop cells on AVX2"
    )
    assert kernel_notes(new, []) == []


def test_baselines_store_add_shows_each_cells_cpu_kernels(tmp_path, capsys):
    """A cell added from a sitting on another CPU is stored, noted on stderr and marked in the README."""
    dest = tmp_path / "baselines" / "mini_long"

    def add(name, seed, kernels):
        report = write_report(tmp_path / name, results_frame([("grpo", "webshop", "tiny-qwen3", seed, "acc", 40.0)]),
                              [on(manifest("grpo", "webshop", seed), kernels)])  # fmt: skip
        return main(
            ["baselines", "store", "--profile", "mini", "--from", str(report), "--to", str(dest), "--add"]
        )

    assert add("r1", 0, "AVX2") == 0 and add("r2", 1, "AVX2") == 0
    assert "note:" not in capsys.readouterr().err
    readme = (dest / "README.md").read_text()
    assert (
        "| GRPO (`grpo`) | webshop | tiny-qwen3 | 0, 1 | AVX2 |" in readme and "float rounding" not in readme
    )
    assert add("r3", 2, "AVX512") == 0
    assert "grpo/webshop/tiny-qwen3/seed 2 ran on AVX512 CPU kernels, the stored webshop cells on AVX2" in (
        capsys.readouterr().err
    )
    readme = (dest / "README.md").read_text()
    assert "| GRPO (`grpo`) | webshop | tiny-qwen3 | 0, 1, 2 | AVX2 (0, 1); AVX512 (2) |" in readme
    assert "float rounding" in readme
    assert sorted(pd.read_csv(dest / "results.csv").seed) == [0, 1, 2]


def started(m: dict, directory: Path, revision: str | None = None) -> dict:
    from sdar.models import model_revision

    return {**m, "run": {"model": {"dir": str(directory), "revision": revision or model_revision(directory)}}}


def test_baselines_store_keeps_the_warm_start_and_refuses_cells_from_other_weights(tmp_path, capsys):
    """A stored set keeps the warm start its cells started from, byte for byte; a cell that started from
    another one (another machine's warm start) or from a warm start rebuilt since is refused."""
    from sdar.models import model_revision

    ws = warm_start(tmp_path / "vanilla" / "webshop", b"weights of sitting 1")
    dest = tmp_path / "baselines" / "mini_long"
    rows = [
        ("vanilla", "webshop", "tiny-qwen3", 0, "acc", 15.0),
        ("grpo", "webshop", "tiny-qwen3", 0, "acc", 31.0),
        ("skill_grpo*", "webshop", "tiny-qwen3", 0, "acc", 33.0),
    ]
    # skill_grpo* evaluates Skill-GRPO's trained checkpoint: other weights, by design
    trained = warm_start(tmp_path / "runs" / "skill_grpo" / "checkpoint", b"trained weights")
    first = write_report(tmp_path / "r1", results_frame(rows),
                         [*(started(manifest(m, "webshop", 0), ws) for m in ("vanilla", "grpo")),
                          started(manifest("skill_grpo*", "webshop", 0), trained)])  # fmt: skip
    assert (
        main(["baselines", "store", "--profile", "mini", "--from", str(first), "--to", str(dest), "--add"])
        == 0
    )
    kept = dest / "warmstarts" / "tiny-qwen3" / "webshop"
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == {p.name: p.read_bytes() for p in ws.iterdir()}
    assert model_revision(kept) == model_revision(ws)
    assert "warmstarts/<model>/<env>/" in (dest / "README.md").read_text()
    assert "(tiny-qwen3/webshop)" in (dest / "README.md").read_text()
    stored = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}

    def add_seed_1(name: str, directory: Path, revision: str | None = None) -> int:
        """Store --add GRPO seed 1, started from `directory` (its recorded revision: `revision`)."""
        report = write_report(tmp_path / name, results_frame([("grpo", "webshop", "tiny-qwen3", 1, "acc", 20.0)]),
                              [started(manifest("grpo", "webshop", 1), directory, revision)])  # fmt: skip
        return main(
            ["baselines", "store", "--profile", "mini", "--from", str(report), "--to", str(dest), "--add"]
        )

    other = warm_start(tmp_path / "elsewhere" / "webshop", b"weights of another CPU")
    assert add_seed_1("r2", other) == 2
    err = capsys.readouterr().err
    assert "grpo/webshop/tiny-qwen3/seed 1 started from the model" in err and "not comparable" in err
    assert add_seed_1("r3", other, "sha256:0123456789abcdef") == 2
    assert "rebuilt since" in capsys.readouterr().err
    assert {
        p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()
    } == stored  # untouched

    # a later sitting's cell from the same weights (restored elsewhere: the same bytes) joins the set
    assert add_seed_1("r4", warm_start(tmp_path / "sitting2" / "webshop", b"weights of sitting 1")) == 0
    assert model_revision(kept) == model_revision(ws)
    assert sorted(pd.read_csv(dest / "results.csv").seed) == [0, 0, 0, 1]
    assert [p.name for p in (dest / "warmstarts" / "tiny-qwen3").iterdir()] == ["webshop"]


# ------------------------------------------------------------------------------------------------------
# compare


def compare_inputs():
    """New method gigpo (3 seeds) vs stored grpo (lower), sdar (equal) and rlsd (higher) on ALFWorld All."""
    model = "tiny-qwen3"
    new = [("gigpo", "alfworld", model, s, "all", v) for s, v in enumerate([60.0, 61.0, 62.0])]
    base = [("grpo", "alfworld", model, s, "all", v) for s, v in enumerate([50.0, 51.0, 52.0])]
    base += [("sdar", "alfworld", model, s, "all", 61.0) for s in range(3)]
    base += [("rlsd", "alfworld", model, s, "all", v) for s, v in enumerate([70.0, 80.0, 90.0])]
    base += [("grpo", "webshop", model, 0, "success", 5.0)]  # an env gigpo was not run on
    return results_frame(new), results_frame(base)


def test_compare_rows_ci_and_probability_of_improvement():
    new, base = compare_inputs()
    df = compare_rows(new, base, "gigpo", n_boot=5000, seed=0)
    assert list(df.columns) == COLUMNS
    assert df.baseline.tolist() == ["grpo", "rlsd", "sdar"]  # Table 1's row order
    rows = df.set_index("baseline")
    assert rows.loc["grpo", "diff"] == pytest.approx(10.0)
    assert rows.loc["grpo", "ci_low"] <= 10.0 <= rows.loc["grpo", "ci_high"]
    # resampled means lie in 50..52 and 60..62, so every bootstrap difference lies in 8..12
    assert 8.0 <= rows.loc["grpo", "ci_low"] and rows.loc["grpo", "ci_high"] <= 12.0
    assert rows.loc["grpo", "p_improvement"] == 1.0
    # vs a constant 61: 60 loses 3 pairs, 61 ties 3 (half each), 62 wins 3 -> 4.5 / 9
    assert rows.loc["sdar", "diff"] == pytest.approx(0.0)
    assert rows.loc["sdar", "p_improvement"] == 0.5
    assert rows.loc["rlsd", "p_improvement"] == 0.0
    assert (rows.new_mean == 61.0).all() and (rows.new_std == 1.0).all() and (rows.new_seeds == 3).all()
    assert "webshop" not in set(df.env)


def test_compare_cli_writes_table_and_rejects_bad_input(tmp_path, capsys):
    new, base = compare_inputs()
    res = write_report(tmp_path / "new", new)
    stored = write_report(tmp_path / "baselines", base)
    out = tmp_path / "compare"
    args = ["compare", "--method", "gigpo", "--results", str(res / "results.csv"), "--baselines", str(stored)]
    assert main([*args, "--out", str(out)]) == 0
    df = pd.read_csv(out / "gigpo.csv")
    assert df.set_index("baseline").loc["grpo", "p_improvement"] == 1.0
    md = (out / "gigpo.md").read_text()
    assert "## ALFWorld All, tiny-qwen3: GiGPO 61.0 ± 1.0 (n=3)" in md
    assert "| GRPO | 51.0 ± 1.0 (n=3) | +10.0 |" in md and "| 1.00 |" in md and "| 0.00 |" in md

    assert (
        main(
            ["compare", "--method", "nope", "--results", str(res / "results.csv"), "--baselines", str(stored)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "unknown method 'nope'" in err and "sdar" in err
    assert main(["compare", "--method", "sdar_gigpo", *args[3:], "--out", str(out)]) == 2
    assert "no results for method 'sdar_gigpo'" in capsys.readouterr().err
    assert main([*args[:5], "--baselines", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no stored baselines" in capsys.readouterr().err


def test_compare_refuses_other_panels(tmp_path, capsys):
    new, base = compare_inputs()
    res = write_report(
        tmp_path / "new", new, [{"method": "gigpo", "env": "alfworld", "panel_sha256": "a" * 64}]
    )
    stored = write_report(
        tmp_path / "b", base, [{"method": "grpo", "env": "alfworld", "panel_sha256": "b" * 64}]
    )
    args = ["compare", "--method", "gigpo", "--results", str(res / "results.csv"), "--baselines", str(stored)]
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    assert "different alfworld panel" in capsys.readouterr().err


def test_compare_refuses_another_set_of_panel_tasks(tmp_path, capsys):
    new, base = compare_inputs()
    same = {"env": "alfworld", "panel_sha256": "a" * 64}
    res = write_report(tmp_path / "new", new, [{"method": "gigpo", **same, "tasks_sha256": "c" * 64}])
    stored = write_report(tmp_path / "b", base, [{"method": "grpo", **same, "tasks_sha256": "d" * 64}])
    args = ["compare", "--method", "gigpo", "--results", str(res / "results.csv"), "--baselines", str(stored)]
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    assert "different alfworld set of panel tasks (cccccccccccc)" in capsys.readouterr().err
    # baselines stored before the tasks were recorded still compare on the panel hash alone
    old = write_report(tmp_path / "old", base, [{"method": "grpo", **same}])
    args[-1] = str(old)
    assert main([*args, "--out", str(tmp_path / "d")]) == 0


def test_compare_without_results_runs_snakemake_for_the_new_method(monkeypatch, capsys, tmp_path):
    from snakemake.cli import parse_config

    import sdar.commands.report as report_cmd

    calls = []

    class Done:
        returncode = 0

    monkeypatch.setattr(report_cmd.subprocess, "run", lambda cmd, cwd: calls.append((cmd, cwd)) or Done())
    # no stored baselines of the profile: a clear error before any cell runs
    monkeypatch.setattr(report_cmd, "BASELINES", tmp_path)
    assert main(["compare", "--method", "skill_grpo*", "--cores", "2"]) == 2 and not calls
    assert f"no stored baselines in {tmp_path / 'mini'}" in capsys.readouterr().err
    write_report(tmp_path / "mini", compare_inputs()[1])
    assert main(["compare", "--method", "skill_grpo*", "--cores", "2"]) == 0
    cmd, cwd = calls[0]
    assert cwd == REPO and cmd[1:6] == [
        "-m",
        "snakemake",
        "results/mini/compare/skill_grpo_star.md",
        "--cores",
        "2",
    ]
    assert cmd[6] == "--config" and parse_config([cmd[7]]) == {
        "compare_methods": ["skill_grpo*"]
    }  # as snakemake reads it
    # another profile: its configfile comes after the target (--configfile takes several values)
    smoke = snakemake_command("sdar", "smoke", "1", REPO)
    assert (
        smoke[3] == "results/smoke/compare/sdar.md"
        and smoke[smoke.index("--configfile") + 1] == "config/smoke.yaml"
    )
    assert capsys.readouterr().out.strip().endswith("results/mini/compare/skill_grpo_star.md")

    assert main(["compare", "--method", "nope"]) == 2 and not calls[1:]  # checked before any work
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        snakemake_command("sdar", "nope", "1", REPO)

    class Failed:
        returncode = 1

    monkeypatch.setattr(report_cmd.subprocess, "run", lambda cmd, cwd: Failed())
    assert main(["compare", "--method", "sdar"]) == 1
    assert "snakemake failed" in capsys.readouterr().err
