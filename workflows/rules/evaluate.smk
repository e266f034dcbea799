# Evaluation on the fixed eval panel of the cell's env: a trained cell evaluates its own last checkpoint; an
# evaluation-only row (vanilla, skill_prompt*, skill_grpo*) evaluates the checkpoint its row names (the
# vanilla model, or skill_grpo's checkpoint of the same env, model and seed) without retraining anything.


rule evaluate_trained:
    input:
        f"{CELL}/train.done",
    output:
        f"{CELL}/eval.json",
    log:
        f"{OUT}/logs/evaluate/{{method}}/{{env}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate/{{method}}/{{env}}/{{model}}/seed{{seed}}.tsv"
    wildcard_constraints:
        method="|".join(TRAINED),
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=config["gpus"],
    params:
        run=lambda wildcards, output: parent(output[0]),
    shell:
        "sdar-bench evaluate --run {params.run} --set train.threads={threads} > {log} 2>&1"


rule evaluate_checkpoint:
    input:
        model=checkpoint_marker,
        env=f"{OUT}/data/envs/{{env}}.json",
    output:
        f"{CELL}/eval.json",
    log:
        f"{OUT}/logs/evaluate/{{method}}/{{env}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate/{{method}}/{{env}}/{{model}}/seed{{seed}}.tsv"
    wildcard_constraints:
        method="|".join(EVAL_ONLY),
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=config["gpus"],
    params:
        method=lambda wildcards: method_from_slug(wildcards.method),
        model_dir=checkpoint_dir,
        out=lambda wildcards, output: parent(output[0]),
        flags=cell_flags,
        settings=lambda wildcards: settings(
            wildcards.env, "train", "envs", "skills", "eval"
        ),
    shell:
        "sdar-bench evaluate --method {params.method:q} --env {wildcards.env} --model {wildcards.model} "
        "--seed {wildcards.seed} --model-dir {params.model_dir} --out {params.out} {params.flags} "
        "--set train.threads={threads} > {log} 2>&1"
