# SDAR-Bench: one DAG from models to Table 1. `snakemake --cores all` runs the mini profile (config/config.yaml);
# `--configfile config/smoke.yaml` or `config/paper.yaml` selects another profile, `--profile profiles/slurm`
# runs the jobs on a SLURM cluster. Every rule is one `shell:` call to `sdar-bench` (STYLE.md rule 7).
#
#   env_data -> corpus -> build_model -> warmstart -> train -> evaluate_trained  -\
#                                                \-> evaluate_checkpoint ----------+-> collect -> tables, plots
#   (one cell = results/<profile>/runs/<method>/<env>/<model>/seed<seed>/)         \-> collect_method -> compare


configfile: "config/config.yaml"


include: "workflows/rules/common.smk"
include: "workflows/rules/models.smk"
include: "workflows/rules/warmstart.smk"
include: "workflows/rules/train.smk"
include: "workflows/rules/evaluate.smk"
include: "workflows/rules/report.smk"


localrules:
    all,
    collect,
    tables,
    plots,
    collect_method,
    compare,


rule all:
    default_target: True
    input:
        TABLES,
        FIGURES,
        COMPARISONS,
