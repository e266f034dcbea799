# Shared by every rule: config validation, the run sheet (method x env x model x seed as a Paramspace), the
# cell layout and the `sdar-bench` flags of the active profile. Outputs of a profile live under OUT.
import copy
import functools
import itertools
from pathlib import Path

import pandas as pd
from snakemake.utils import Paramspace, validate

from sdar import config as suite_config
from sdar import configlib
from sdar.commands.train import profile_file
from sdar.methods import METHODS, get_method
from sdar.models import get_alias
from sdar.report.naming import method_from_slug, method_slug

# A --configfile of another profile than config/config.yaml's is complete on its own: Snakemake merges it over
# config/config.yaml, and keys only the mini profile sets (`env_config`) would leak into that profile's cells.
_cli = workflow.config_settings.overwrite_config
_default = configlib.read_yaml(Path(workflow.basedir) / "config/config.yaml")["profile"]
if workflow.overwrite_configfiles and _cli.get("profile", _default) != _default:
    config.clear()
    config.update(copy.deepcopy(dict(_cli)))
# Snakemake reads `--config 'seeds=[0,1,2]'` with YAML's BaseLoader, whose list items are strings
config["seeds"] = [
    int(s) if isinstance(s, str) and s.isdigit() else s for s in config.get("seeds", [])
]
validate(config, schema="../../config/schema.yaml")

PROFILE = config["profile"]
OUT = f"results/{PROFILE}"
REPORT = config["report_dir"]
BASELINES = config["baselines_dir"] or f"results/baselines/{PROFILE}"
ENV_CACHE = f"{OUT}/envs"
ALL_ENVS = ("alfworld", "webshop", "search_qa")
# `sdar-bench plots` writes <kind>_<env>_<model>.{png,pdf}
PLOT_KINDS = ("gap", "success")
# `conda:` of every rule (used with --sdm conda; otherwise rules run in the active environment)
CONDA_ENV = str(Path(workflow.basedir) / config["conda_env"])

for name in [*config["methods"], *config["compare_methods"]]:
    get_method(name)  # an unknown method fails here, with the list of choices

# One cell = one directory: the train outputs (trained rows) and eval.json.
CELL = f"{OUT}/runs/{{method}}/{{env}}/{{model}}/seed{{seed}}"
TRAINED = [method_slug(m) for m, row in METHODS.items() if row.trains]
EVAL_ONLY = [method_slug(m) for m, row in METHODS.items() if not row.trains]


wildcard_constraints:
    method=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    env="|".join(ALL_ENVS),
    model=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    seed=r"\d+",


# ----------------------------------------------------------------------------------------------------------
# the run sheet


def run_sheet(methods):
    """Paramspace of the grid: one row per cell (method slug, env, model, seed)."""
    rows = itertools.product(methods, config["envs"], config["models"], config["seeds"])
    df = pd.DataFrame(
        [(method_slug(m), e, a, s) for m, e, a, s in rows],
        columns=["method", "env", "model", "seed"],
    )
    return Paramspace(df)


RUNS = run_sheet(config["methods"])


def method_sheet(wildcards):
    """The cells of one method only (a comparison runs nothing else)."""
    return run_sheet([method_from_slug(wildcards.method)])


# The report's files (the targets of `rule all`)
TABLES = expand(f"{REPORT}/tables/table1.{{ext}}", ext=("csv", "md", "tex"))
FIGURES = expand(
    f"{REPORT}/figures/{{kind}}_{{env}}_{{model}}.{{ext}}",
    kind=PLOT_KINDS,
    env=config["envs"],
    model=config["models"],
    ext=("png", "pdf"),
)
COMPARISONS = expand(
    f"{OUT}/compare/{{method}}.{{ext}}",
    method=[method_slug(m) for m in config["compare_methods"]],
    ext=("csv", "md"),
)


def cell_dirs(sheet):
    return [CELL.format(**row) for row in sheet.dataframe.to_dict("records")]


def cell_evals(sheet):
    return [f"{d}/eval.json" for d in cell_dirs(sheet)]


# ----------------------------------------------------------------------------------------------------------
# paths and flags shared by the rules


def config_files(env=None):
    """Suite overrides in precedence order: the profile's file, the env's own file (every env's when `env` is
    None: rules that build all environments), the user's files (local data and model paths), the env's files
    that override a budget of those (config/mini_long.yaml: WebShop's RL steps).
    """
    envs = ALL_ENVS if env is None else [env]
    env_files = [config["env_config"][e] for e in envs if config["env_config"].get(e)]
    env_extra = [f for e in envs for f in config["env_extra_config"].get(e, [])]
    return [config["sdar_config"], *env_files, *config["extra_config"], *env_extra]


def suite_flags(env=None, profile=True):
    """`--profile P --config F ...`: the overrides every sdar-bench call of this profile reads."""
    flags = [f"--profile {PROFILE}"] if profile else []
    return " ".join(flags + [f"--config {f}" for f in config_files(env)])


@functools.cache
def overrides(env=None):
    """The YAML overrides an sdar-bench call with `suite_flags(env)` reads, merged in precedence
    order; checked against the config tree now, so a bad key fails before any job."""
    files = [profile_file(PROFILE), *config_files(env)]
    configlib.load(suite_config.Config, files, [])
    merged = {}
    for path in files:
        merged = configlib.deep_merge(merged, configlib.read_yaml(path))
    return merged


def settings(env, *sections):
    """The overridden settings a job reads (its `settings` param): Snakemake reruns the job when one
    of them changes in the YAML files, and only then (new `train` values retrain the cells, not the
    warm start). Dataclass defaults are code, untracked like the rest of the package."""
    merged = overrides(env)
    out = {name: merged.get(name, {}) for name in sections}
    if env is not None and "envs" in out:
        out["envs"] = {env: out["envs"].get(env, {})}
    return out


def cached_flags(env=None):
    """`suite_flags(env)` and the profile's shared environment cache (every job that plays an environment)."""
    return f"{suite_flags(env)} --set paths.env_cache={ENV_CACHE}"


def cell_flags(wildcards):
    """The flags of one cell: its env's overrides and the profile's shared environment cache."""
    return cached_flags(wildcards.env)


def corpus_input(model):
    """A tiny model's tokenizer is trained on the corpus; real models bring their own."""
    return [f"{OUT}/data/corpus.txt"] if get_alias(model).kind == "tiny" else []


# The warm start's output: one model for all environments, or one per environment (`warmstart_scope`);
# WARMSTART_TAG also names its log and benchmark files.
PER_ENV_WARMSTART = config["warmstart_scope"] == "per_env"
WARMSTART_TAG = "{model}/{env}" if PER_ENV_WARMSTART else "{model}"
VANILLA = f"{OUT}/vanilla/{WARMSTART_TAG}"


def vanilla_marker(model, env):
    """The starting checkpoint of a cell: the warm-started model (of its env, with a per-env warm start),
    or the built model itself."""
    if config["warmstart"]:
        return str(Path(VANILLA.format(model=model, env=env), "warmstart.json"))
    return f"{OUT}/models/{model}/config.json"


def warmstart_env(wildcards):
    """The environment of a per-env warm start; None for the shared one."""
    return wildcards.env if PER_ENV_WARMSTART else None


def warmstart_flags(wildcards):
    env = warmstart_env(wildcards)
    only = f" --set 'warmstart.envs=[{env}]'" if env else ""
    return cached_flags(env) + only


def stored_warmstart_flag(wildcards):
    """`--stored DIR ` where the warm start stored with the baselines is to be reused (the flag's value stays
    the same whether DIR holds one yet or not, so storing one does not rerun the job).
    """
    if not (config["warmstart_from_baselines"] and PER_ENV_WARMSTART):
        return ""
    return f"--stored {BASELINES}/warmstarts/{wildcards.model}/{wildcards.env} "


def checkpoint_marker(wildcards):
    """What an evaluation-only row evaluates: `vanilla`, or the trained checkpoint of its row (skill_grpo*)."""
    row = get_method(method_from_slug(wildcards.method))
    if row.checkpoint == "vanilla":
        return vanilla_marker(wildcards.model, wildcards.env)
    source = dict(wildcards, method=method_slug(row.checkpoint))
    return str(Path(CELL.format(**source), "train.done"))


def checkpoint_dir(wildcards):
    marker = checkpoint_marker(wildcards)
    if marker.endswith("train.done"):
        return str(Path(marker).parent / "checkpoint" / "model")
    return str(Path(marker).parent)


def parent(path):
    return str(Path(path).parent)
