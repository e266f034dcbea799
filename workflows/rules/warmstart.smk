# Warm start: supervised fine-tuning of the built model on noisy expert turns; its result is the `vanilla` model
# the cells start from. `warmstart_scope: shared` trains one model on every environment's demonstrations,
# `per_env` one per environment on its own (read with that environment's config files). Profiles with
# `warmstart: false` start from the built model itself, as the paper starts from an instruct model.
# `warmstart_from_baselines: true` (config/mini_long.yaml) reuses the warm start stored with the baselines
# (BASELINES/warmstarts/<model>/<env>/, per-env scope) where there is one, byte for byte, instead of training:
# another CPU trains another model, and cells added to a stored set must start from its weights.


rule warmstart:
    input:
        model=f"{OUT}/models/{{model}}/config.json",
        envs=lambda wildcards: expand(
            f"{OUT}/data/envs/{{env}}.json",
            env=[warmstart_env(wildcards)] if PER_ENV_WARMSTART else ALL_ENVS,
        ),
    output:
        f"{VANILLA}/warmstart.json",
    log:
        f"{OUT}/logs/warmstart/{WARMSTART_TAG}.log",
    benchmark:
        f"{OUT}/benchmarks/warmstart/{WARMSTART_TAG}.tsv"
    # before any cell: every cell of an environment waits for its warm start
    priority: 10
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=config["gpus"],
    params:
        base=lambda wildcards, input: parent(input.model),
        out=lambda wildcards, output: parent(output[0]),
        flags=warmstart_flags,
        stored=stored_warmstart_flag,
        settings=lambda wildcards: settings(
            warmstart_env(wildcards), "warmstart", "envs", "skills"
        ),
    shell:
        "sdar-bench warmstart --model {wildcards.model} --model-dir {params.base} --out {params.out} {params.flags} "
        "{params.stored}--set train.threads={threads} > {log} 2>&1"
