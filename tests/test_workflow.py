"""The Snakemake workflow: the smoke profile end to end (every rule, every artifact checked for content), an
interrupted run resumed with `--rerun-incomplete`, one-cell reruns, a comparison against stored baselines,
the paper grid's plan and hyperparameters, `snakefmt --check` and `snakemake --lint`.

Everything runs in a copy of the workflow files under a tmp directory, so the repository's results/ are never
touched. The smoke run is one module fixture (about 2-3 minutes on 2 cores): snakemake is started, killed with
SIGKILL (its whole process group, like a lost node) once two cells are evaluated, unlocked and rerun with
`--rerun-incomplete` to the end.

Run: `pytest -q tests/test_workflow.py`.
"""

import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sdar import configlib
from sdar.config import Config
from sdar.methods import METHODS
from sdar.report.naming import ENV_LABELS, HEADLINE, METRICS, TABLE1_METHODS, method_label, method_slug

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
OUT = Path("results") / "smoke"


def workflow_copy(root: Path) -> Path:
    """The files the workflow reads, copied under `root` (outputs then go to root/results/)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflows", "config", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    shutil.copytree(REPO / "results" / "reference", root / "results" / "reference")
    return root


def snakemake(cwd: Path, *args, timeout=600, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # the rules call sdar-bench
    res = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)  # fmt: skip
    if check:
        assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    return res


def job_stats(output: str) -> dict[str, int]:
    """The "Job stats" table of a snakemake (dry) run: rule -> number of jobs."""
    block = output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M) if m[1] != "total"}


def cells(config: dict):
    """(method, env, model, seed) of every cell of a config's grid."""
    return [(m, e, a, s) for m in config["methods"] for e in config["envs"] for a in config["models"]
            for s in config["seeds"]]  # fmt: skip


def cell_dir(root: Path, method, env, model, seed) -> Path:
    return root / OUT / "runs" / method_slug(method) / env / model / f"seed{seed}"


# ----------------------------------------------------------------------------------------------------------
# static checks: formatting, lint, the paper grid's plan


def test_snakefmt_check():
    res = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflows/rules"], cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="module")
def static_copy(tmp_path_factory):
    return workflow_copy(tmp_path_factory.mktemp("static"))


@pytest.mark.parametrize("configfile", [[], ["--configfile", "config/paper.yaml"]], ids=["mini", "paper"])
def test_lint_is_clean(static_copy, configfile):
    res = snakemake(static_copy, "--lint", *configfile, check=False)
    text = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in text, text[-5000:]


@pytest.mark.parametrize("scope", ["shared", "per_env"])
def test_warm_start_scope_plans_one_model_or_one_per_env(static_copy, scope):
    plan = snakemake(
        static_copy, "--dry-run", "--printshellcmds", "--config", f"warmstart_scope={scope}"
    ).stdout
    envs = ("alfworld", "webshop", "search_qa")
    starts = re.findall(r"sdar-bench warmstart .*--out (\S+)(.*)", plan)
    trains = re.findall(r"sdar-bench train .*--env (\S+) .*--model-dir (\S+)", plan)
    assert trains and job_stats(plan)["warmstart"] == len(starts)
    if scope == "shared":  # one model on every environment's demonstrations
        assert [out for out, _ in starts] == ["results/mini/vanilla/tiny-qwen3"]
        assert "warmstart.envs" not in starts[0][1]
        assert {start for _, start in trains} == {starts[0][0]}
    else:  # one per environment, on its own demonstrations, and each cell starts from its env's model
        assert sorted(out for out, _ in starts) == sorted(
            f"results/mini/vanilla/tiny-qwen3/{e}" for e in envs
        )
        for out, flags in starts:
            assert f"'warmstart.envs=[{Path(out).name}]'" in flags
        assert all(start == f"results/mini/vanilla/tiny-qwen3/{env}" for env, start in trains)
    # each of the mini profile's per-env files (ALFWorld: rooms and turns; WebShop, Search-QA: demonstrators and the
    # copy task) reaches that environment's cells and only them
    for line in re.findall(r"sdar-bench train .*", plan):
        for env in envs:
            assert (f"--config config/profiles/mini_{env}.yaml" in line) == (f"--env {env}" in line)


def test_seeds_from_the_command_line(static_copy):
    # README: `--config 'seeds=[0,1,2]'` (Snakemake parses the list items as strings)
    plan = snakemake(
        static_copy, "-n", "-p", "--config", "seeds=[0,2]", "methods=[grpo]", "envs=[webshop]"
    ).stdout
    assert sorted(re.findall(r"sdar-bench train .*--seed (\d+)", plan)) == ["0", "2"]


def test_another_profile_inherits_no_mini_keys(static_copy):
    # Snakemake merges a --configfile over config/config.yaml; a file of another profile is read on its own,
    # so the mini profile's ALFWorld file (20 turns) reaches no smoke cell, while a partial mini file still
    # extends the default config
    partial = static_copy / "more_seeds.yaml"
    partial.write_text("profile: mini\nseeds: [0, 1]\n")
    for configfile, mini_file in (("config/smoke.yaml", False), (partial.name, True)):
        plan = snakemake(static_copy, "-n", "-p", "--configfile", configfile).stdout
        trains = [line for line in re.findall(r"sdar-bench train .*", plan) if "--env alfworld" in line]
        assert trains and all(("mini_alfworld.yaml" in line) == mini_file for line in trains)
    assert "--seed 1" in plan


def test_mini_long_adds_the_calibrated_budget_to_every_mini_job(static_copy):
    # config/mini_long.yaml extends the default file: every warm start and cell reads the calibrated budget after
    # its env file, and it resolves to the 150-step recipe, WebShop's to 240 steps (its own file, last); the
    # default run reads the short one
    plan = snakemake(static_copy, "-n", "-p", "--configfile", "config/mini_long.yaml").stdout
    jobs = re.findall(r"sdar-bench (?:train|warmstart) .*", plan)
    assert len(jobs) == 21 * 3 + 3  # 3 seeds, one warm start per env
    steps = {}
    for line in jobs:
        files = re.findall(r"--config (\S+)", line)
        webshop = "config/profiles/mini_webshop.yaml" in files
        last = ["config/profiles/mini_long.yaml"] + ["config/profiles/mini_long_webshop.yaml"] * webshop
        assert files[-1 - webshop :] == last and files[0] == "config/profiles/mini.yaml"
        if line.startswith("sdar-bench train"):
            env = re.search(r"--env (\S+)", line).group(1)
            steps.setdefault(env, set()).add(configlib.load(Config, [REPO / f for f in files]).train.steps)
        else:  # its warm starts reuse the ones stored with its baselines (another CPU trains other weights)
            env = re.search(r"warmstart.envs=\[(\w+)\]", line).group(1)
            assert f"--stored results/baselines/mini_long/warmstarts/tiny-qwen3/{env} " in line
    assert steps == {"alfworld": {150}, "webshop": {240}, "search_qa": {150}}
    assert "--stored" not in snakemake(static_copy, "-n", "-p").stdout  # the default trains its own
    short = [REPO / "config/profiles/mini.yaml", REPO / "config/profiles/mini_alfworld.yaml"]
    long = configlib.load(Config, [*short, REPO / "config/profiles/mini_long.yaml"])
    default = configlib.load(Config, short)
    assert (long.train.steps, long.train.tasks_per_step, long.warmstart.max_steps) == (150, 8, 1500)
    assert (default.train.steps, default.train.tasks_per_step, default.warmstart.max_steps) == (2, 1, 600)
    # the copy task (WebShop, Search-QA) stops once the induction heads formed in the default, runs its 2,000 steps
    # in the calibrated budget
    assert (long.warmstart.copy_target_accuracy, default.warmstart.copy_target_accuracy) == (0.0, 0.9)
    # the budgets share every env setting but the size of Search-QA's eval panel (10 vs 5 per source)
    assert long.train.lr == default.train.lr
    assert (long.envs.search_qa.eval_per_source, default.envs.search_qa.eval_per_source) == (10, 5)
    assert long.envs == dataclasses.replace(
        default.envs, search_qa=dataclasses.replace(default.envs.search_qa, eval_per_source=10)
    )


@pytest.fixture(scope="module")
def paper_plan(static_copy):
    return snakemake(static_copy, "--dry-run", "--printshellcmds", "--configfile", "config/paper.yaml").stdout


def test_paper_plan_covers_the_grid(paper_plan):
    assert PAPER["models"] == ["qwen2.5-3b-instruct", "qwen2.5-7b-instruct", "qwen3-1.7b"]
    assert PAPER["methods"] == list(TABLE1_METHODS) and len(PAPER["envs"]) == 3 and PAPER["seeds"]
    per_method = len(PAPER["envs"]) * len(PAPER["models"]) * len(PAPER["seeds"])
    trained = sum(METHODS[m].trains for m in PAPER["methods"])
    stats = job_stats(paper_plan)
    assert trained == 7 and stats["train"] == stats["evaluate_trained"] == trained * per_method
    evaluation_only = len(PAPER["methods"]) - trained  # they evaluate existing checkpoints
    assert stats["evaluate_checkpoint"] == evaluation_only * per_method
    assert stats["build_model"] == 3 and stats["env_data"] == 3
    assert "warmstart" not in stats and "corpus" not in stats  # the instruct models are Vanilla
    assert stats["collect"] == stats["tables"] == stats["plots"] == 1


def test_slurm_profile_gives_each_rule_its_resources(static_copy):
    plan = snakemake(
        static_copy, "-n", "--profile", "profiles/slurm", "--configfile", "config/paper.yaml"
    ).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:.*\n)*?    resources: (.*)$", plan, re.M)
    resources = {rule: res for rule, res in jobs}
    assert "gpu=1" in resources["train"] and "runtime=2880" in resources["train"]
    assert "gpu=1" in resources["evaluate_checkpoint"] and "gpu" not in resources["build_model"]


# PAPER.md §4: the shared settings and, per env, tasks per step, PPO mini/micro batch, prompt limit, alpha_KL,
# turns, history, invalid-action penalty, validation temperature, warmup.
PAPER_SHARED = {"train.steps": 150, "train.group_size": 8, "train.lr": 1e-6, "train.backend": "vllm",
                "train.max_new_tokens": 512, "train.rollout_temperature": 1.0, "objective.clip_eps": 0.2,
                "objective.entropy_coef": 0.001, "objective.sdar_lambda": 0.01, "objective.sdar_beta": 5.0,
                "objective.rlsd_lambda": 0.5, "objective.skill_sd_coef": 0.001}  # fmt: skip
PAPER_PER_ENV = {
    "alfworld": (16, 256, 32, 2048, 0.01, 50, 2, 0.1, 0.4, 0.0),
    "webshop": (16, 64, 8, 4096, 0.01, 15, 2, 0.1, 0.4, 0.0),
    "search_qa": (128, 256, 16, 4096, 0.001, 4, 4, 0.01, 0.0, 0.1),
}


def resolved_config(command: str):
    """The Config a planned `sdar-bench train ...` command resolves (what it writes to config.resolved.yaml)."""
    from sdar import config as config_mod
    from sdar import configlib
    from sdar.cli import build_parser
    from sdar.commands.train import profile_file

    argv = shlex.split(command.split(" > ")[0])[1:]
    args = build_parser().parse_args(argv)
    flags = {"run": {"method": args.method, "env": args.env, "model": args.model, "seed": args.seed,
                     "profile": args.profile}}  # fmt: skip
    files = [profile_file(args.profile), *args.config]
    return configlib.load(config_mod.Config, files, args.set, extra=flags)


@pytest.mark.parametrize("env", PAPER_PER_ENV)
def test_paper_plan_has_the_papers_hyperparameters(static_copy, paper_plan, env):
    commands = re.findall(r"^Shell command: (sdar-bench train .*)$", paper_plan, re.M)
    ours = [c for c in commands if f"--env {env} " in c]
    assert len(ours) == len(commands) // 3
    for command in (ours[0], ours[-1]):
        os.chdir(static_copy)  # the planned --config paths are relative to the workflow's directory
        try:
            cfg = resolved_config(command)
        finally:
            os.chdir(REPO)
        for key, value in PAPER_SHARED.items():
            section, name = key.split(".")
            assert getattr(getattr(cfg, section), name) == value, key
        tasks, mini, micro, prompt, kl, turns, history, penalty, temperature, warmup = PAPER_PER_ENV[env]
        tc, env_cfg = cfg.train, getattr(cfg.envs, env)
        batches = (tc.tasks_per_step, tc.minibatch_size, tc.micro_batch_size, tc.max_prompt_tokens)
        assert batches == (tasks, mini, micro, prompt)
        assert (cfg.objective.kl_coef, tc.warmup_ratio) == (kl, warmup)
        protocol = (env_cfg.max_turns, env_cfg.history_length, env_cfg.invalid_penalty)
        assert protocol == (turns, history, penalty)
        assert getattr(cfg.eval, f"{env}_temperature") == temperature
        assert env_cfg.source == "real"  # the paper's data, never the generated stand-ins


# ----------------------------------------------------------------------------------------------------------
# the smoke profile end to end, interrupted once


def evaluated_cells(root: Path) -> list[Path]:
    return sorted((root / OUT / "runs").glob("*/*/*/*/eval.json"))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run the smoke profile; SIGKILL it after three evaluated cells; unlock; rerun with --rerun-incomplete."""
    root = workflow_copy(tmp_path_factory.mktemp("smoke"))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    run = ["--cores", "2", "--configfile", "config/smoke.yaml"]
    t0 = time.monotonic()
    with open(root / "first_run.log", "w") as log:
        proc = subprocess.Popen([str(BIN / "snakemake"), *run], cwd=root, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        # two jobs run at a time, so at least one of three evaluated cells was complete when killed
        # (the deadlines are generous: a machine busy with other jobs runs the smoke grid 3-4x slower)
        while len(evaluated_cells(root)) < 3 and proc.poll() is None and time.monotonic() - t0 < 1500:
            time.sleep(0.2)
        assert proc.poll() is None, (root / "first_run.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every running job, like a lost node
        proc.wait()
    # a plain rerun refuses: the jobs that were running left outputs Snakemake marks incomplete ...
    plain = snakemake(root, *run, check=False)
    text = plain.stdout + plain.stderr
    assert plain.returncode != 0 and ("--rerun-incomplete" in text or "--unlock" in text), text[-3000:]
    incomplete = set(text.split("Incomplete files:", 1)[1].split()) if "Incomplete files:" in text else set()
    finished = {
        p: p.stat().st_mtime_ns for p in evaluated_cells(root) if str(p.relative_to(root)) not in incomplete
    }
    # ... and the killed run's lock stays until `--unlock`
    locked = snakemake(root, *run, "--rerun-incomplete", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(root, "--unlock", *run)
    rerun = snakemake(root, *run, "--rerun-incomplete", timeout=1800)
    return {"root": root, "finished": finished, "incomplete": incomplete, "rerun": rerun.stdout + rerun.stderr,
            "seconds": time.monotonic() - t0}  # fmt: skip


def test_interrupted_run_completes_without_redoing_finished_cells(smoke):
    assert len(smoke["finished"]) >= 1
    rerun_outputs = " ".join(re.findall(r"^\s+output: (.*)$", smoke["rerun"], re.M))
    assert "eval.json" in rerun_outputs  # the rest of the grid did run
    for path, mtime in smoke["finished"].items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was recomputed"
        assert str(path.relative_to(smoke["root"])) not in rerun_outputs, f"{path} was planned again"
    for path in smoke["incomplete"]:  # what was running when killed was redone
        assert path in rerun_outputs
    print(f"smoke profile, interrupted and resumed: {smoke['seconds']:.0f} s")


def test_every_cell_has_its_files(smoke):
    root = smoke["root"]
    for method, env, model, seed in cells(SMOKE):
        d = cell_dir(root, method, env, model, seed)
        ev = json.loads((d / "eval.json").read_text())
        assert [ev[k] for k in ("method", "env", "model", "seed", "profile")] == [
            method,
            env,
            model,
            seed,
            "smoke",
        ]
        assert ev["panel_size"] == 4 and 0.0 <= ev["success_rate"] <= 1.0 and 0.0 <= ev["score"] <= 1.0
        assert ev["skills_in_prompt"] == METHODS[method].eval_skills
        data = json.loads((root / OUT / "data" / "envs" / f"{env}.json").read_text())
        assert ev["panel_sha256"] == data["panel_sha256"], "evaluated on another panel than the generated one"
        run = yaml.safe_load((d / "config.resolved.yaml").read_text())["run"]
        assert run == {"profile": "smoke", "seed": seed, "model": model, "method": method, "env": env}
        assert json.loads((d / "run.json").read_text())
        rel = f"{method_slug(method)}/{env}/{model}/seed{seed}"
        assert (root / OUT / "logs" / "evaluate" / f"{rel}.log").is_file()
        assert (root / OUT / "benchmarks" / "evaluate" / f"{rel}.tsv").read_text().startswith("s\t")
        if METHODS[method].trains:
            steps = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
            assert [s["step"] for s in steps] == [0, 1, 2] and "rollout/success_rate" in steps[0]
            assert ("sdar/teacher_gap_mean" in steps[0]) == METHODS[method].needs_teacher
            assert (d / "checkpoint" / "model" / "config.json").is_file() and (d / "train.done").is_file()
            start = json.loads((d / "run.json").read_text())["model"]["dir"]
            assert start.endswith(f"vanilla/{model}/{env}"), start  # its own environment's warm start
            assert (root / OUT / "benchmarks" / "train" / f"{rel}.tsv").read_text().startswith("s\t")
        else:  # evaluation-only rows reuse a checkpoint: nothing trained in their cell
            assert not (d / "checkpoint").exists() and not (d / "metrics.jsonl").exists()
            source = json.loads((d / "run.json").read_text())
            expected = "skill_grpo/" if method == "skill_grpo*" else f'vanilla/{model}/{env}"'
            assert expected in json.dumps(source), source


def test_models_and_warm_start(smoke):
    root = smoke["root"]
    assert (root / OUT / "data" / "corpus.txt").stat().st_size > 1000
    for model in SMOKE["models"]:
        cfg = json.loads((root / OUT / "models" / model / "config.json").read_text())
        assert cfg["num_hidden_layers"] == 1  # the smoke profile's model size
        # one vanilla model per environment, on its own demonstrations
        assert SMOKE["warmstart_scope"] == "per_env"
        for env in SMOKE["envs"]:
            summary = json.loads((root / OUT / "vanilla" / model / env / "warmstart.json").read_text())
            assert summary["steps"] == 2 and list(summary["envs"]) == [env] and summary["examples"] > 0
            assert (root / OUT / "benchmarks" / "warmstart" / model / f"{env}.tsv").is_file()


def test_collected_results(smoke):
    import pandas as pd

    report = smoke["root"] / OUT / "report"
    results = pd.read_csv(report / "results.csv")
    assert set(results.profile) == {"smoke"}
    assert (
        results.value.between(0, 100).all()
        and not results.duplicated(["method", "env", "model", "seed", "metric"]).any()
    )
    groups = results.groupby(["method", "env", "model", "seed"]).metric.apply(set)
    assert sorted(groups.index) == sorted(cells(SMOKE))  # one group of rows per cell
    for (_, env, _, _), metrics in groups.items():  # columns without a task on the 4-task panel are left out
        assert {HEADLINE[env]} <= metrics <= set(METRICS[env]), (env, metrics)
    steps = pd.read_csv(report / "steps.csv")
    trained = {m for m in SMOKE["methods"] if METHODS[m].trains}
    assert set(steps.method) == trained and "eval/success_rate" in set(steps.metric)
    assert "sdar/teacher_gap_mean" in set(steps[steps.method == "sdar"].metric)
    manifests = [json.loads(x) for x in (report / "manifests.jsonl").read_text().splitlines()]
    assert len(manifests) == len(cells(SMOKE))


def test_tables_and_figures(smoke):
    import pandas as pd

    tables = smoke["root"] / SMOKE["report_dir"] / "tables"
    table = pd.read_csv(tables / "table1.csv")
    means = table[table.row == "mean"].set_index("method")
    for method in SMOKE["methods"]:
        for env in SMOKE["envs"]:
            assert 0.0 <= means.loc[method, f"{env}/{HEADLINE[env]}"] <= 100.0
    md, tex = (tables / "table1.md").read_text(), (tables / "table1.tex").read_text()
    for method in SMOKE["methods"]:
        assert f"| {method_label(method)} |" in md and f"{method_label(method)} &" in tex
    for env in SMOKE["envs"]:
        assert ENV_LABELS[env] in md and ENV_LABELS[env] in tex
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
    figures = smoke["root"] / SMOKE["report_dir"] / "figures"
    for kind in ("gap", "success"):
        for env in SMOKE["envs"]:
            for model in SMOKE["models"]:
                png, pdf = (figures / f"{kind}_{env}_{model}.{ext}" for ext in ("png", "pdf"))
                assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
                assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000


def test_every_rule_logged(smoke):
    logs = smoke["root"] / OUT / "logs"
    for name in ("corpus.log", "collect.log", "tables.log", "plots.log", "build_model/tiny-qwen3.log",
                 *(f"env_data/{e}.log" for e in SMOKE["envs"]),
                 *(f"warmstart/tiny-qwen3/{e}.log" for e in SMOKE["envs"])):  # fmt: skip
        assert (logs / name).is_file(), name


def test_finished_run_has_nothing_to_do_and_one_cell_reruns_alone(smoke):
    root = smoke["root"]
    assert "Nothing to be done" in snakemake(root, "-n", "--configfile", "config/smoke.yaml").stdout
    # rerunning one trained cell: its training and evaluation, the `*` row evaluating its checkpoint, the report
    target = cell_dir(Path("."), "skill_grpo", "webshop", "tiny-qwen3", 0) / "train.done"
    plan = snakemake(root, "-n", "--configfile", "config/smoke.yaml", "--forcerun", str(target)).stdout
    plan = job_stats(plan)
    assert plan == {"train": 1, "evaluate_trained": 1, "evaluate_checkpoint": 1, "collect": 1, "tables": 1,
                    "plots": 1, "all": 1}  # fmt: skip
    # a deleted cell is rebuilt alone: skill_grpo* evaluates skill_grpo's checkpoint again, trains nothing
    shutil.rmtree(cell_dir(root, "skill_grpo*", "search_qa", "tiny-qwen3", 0))
    target = cell_dir(Path("."), "skill_grpo*", "search_qa", "tiny-qwen3", 0) / "eval.json"
    # the target goes first: --configfile takes several files, a path after it would be read as one
    res = snakemake(root, str(target), "--cores", "2", "--configfile", "config/smoke.yaml")
    assert job_stats(res.stdout + res.stderr) == {"evaluate_checkpoint": 1}
    assert json.loads((root / target).read_text())["method"] == "skill_grpo*"


def test_a_changed_setting_reruns_only_the_jobs_that_read_it(smoke):
    root = smoke["root"]
    profile = root / "config" / "profiles" / "smoke.yaml"
    text = profile.read_text()
    overrides = yaml.safe_load(text)
    overrides["train"]["steps"] = 3
    profile.write_text(yaml.safe_dump(overrides))
    try:
        plan = job_stats(snakemake(root, "-n", "--configfile", "config/smoke.yaml").stdout)
    finally:
        profile.write_text(text)
    n = len(cells(SMOKE)) // len(SMOKE["methods"])  # cells per method
    trained = sum(METHODS[m].trains for m in SMOKE["methods"])
    # new train values: the cells and the report again, no new environment data, model or warm start
    assert plan == {
        "train": trained * n,
        "evaluate_trained": trained * n,
        "evaluate_checkpoint": (len(SMOKE["methods"]) - trained) * n,
        "collect": 1,
        "tables": 1,
        "plots": 1,
        "all": 1,
    }


def test_compare_runs_only_the_new_methods_cells(smoke):
    root = smoke["root"]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    # baselines stored from this run (the committed ones come from full runs); sdar is then "the new method"
    store = subprocess.run([str(BIN / "sdar-bench"), "baselines", "store", "--profile", "smoke", "--from",
                            str(OUT / "report"), "--to", "results/baselines/smoke"], cwd=root, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert store.returncode == 0, store.stderr
    # what `sdar-bench compare --method sdar --profile smoke` runs: its target, compare_methods=[NEW]
    target = OUT / "compare" / "sdar.md"
    res = snakemake(root, str(target), "--cores", "2", "--configfile", "config/smoke.yaml", "--config",
                    'compare_methods=["sdar"]')  # fmt: skip
    assert job_stats(res.stdout + res.stderr) == {"collect_method": 1, "compare": 1}
    import pandas as pd

    df = pd.read_csv(root / OUT / "compare" / "sdar.csv")
    assert set(df.method) == {"sdar"} and set(df.baseline) == set(SMOKE["methods"])
    assert set(df.env) == set(SMOKE["envs"])
    md = (root / OUT / "compare" / "sdar.md").read_text()
    assert md.startswith("# SDAR vs stored baselines (profile smoke)") and "| Vanilla |" in md
    collected = pd.read_csv(root / OUT / "compare" / "sdar" / "report" / "results.csv")
    assert set(collected.method) == {"sdar"}
