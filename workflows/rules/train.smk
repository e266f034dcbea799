# Training: one cell of a trained row (method x env x model x seed) from the vanilla model. The trainer
# checkpoints every few steps and resumes from the last checkpoint, so a killed cell rerun by Snakemake
# continues where it stopped; `train.done` is touched by Snakemake once `sdar-bench train` has finished.


rule train:
    input:
        model=lambda wildcards: vanilla_marker(wildcards.model, wildcards.env),
        env=f"{OUT}/data/envs/{{env}}.json",
    output:
        touch(f"{CELL}/train.done"),
    log:
        f"{OUT}/logs/train/{{method}}/{{env}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{OUT}/benchmarks/train/{{method}}/{{env}}/{{model}}/seed{{seed}}.tsv"
    wildcard_constraints:
        method="|".join(TRAINED),
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=config["gpus"],
    params:
        method=lambda wildcards: method_from_slug(wildcards.method),
        model_dir=lambda wildcards, input: parent(input.model),
        out=lambda wildcards, output: parent(output[0]),
        flags=cell_flags,
        settings=lambda wildcards: settings(
            wildcards.env, "train", "objective", "envs", "skills", "eval"
        ),
    shell:
        "sdar-bench train --method {params.method:q} --env {wildcards.env} --model {wildcards.model} "
        "--seed {wildcards.seed} --model-dir {params.model_dir} --out {params.out} {params.flags} "
        "--set train.threads={threads} > {log} 2>&1"
