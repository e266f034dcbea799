# Warm start: supervised fine-tuning of the built model on noisy expert turns of every environment, shared by
# all methods and environments; its result is the `vanilla` model every cell starts from (profiles with
# `warmstart: false` start from the built model itself, as the paper starts from an instruct model).


rule warmstart:
    input:
        model=f"{OUT}/models/{{model}}/config.json",
        envs=expand(f"{OUT}/data/envs/{{env}}.json", env=ALL_ENVS),
    output:
        f"{OUT}/vanilla/{{model}}/warmstart.json",
    log:
        f"{OUT}/logs/warmstart/{{model}}.log",
    benchmark:
        f"{OUT}/benchmarks/warmstart/{{model}}.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=config["gpus"],
    params:
        base=lambda wildcards, input: parent(input.model),
        out=lambda wildcards, output: parent(output[0]),
        flags=f"{suite_flags()} --set paths.env_cache={ENV_CACHE}",
        settings=settings(None, "warmstart", "envs", "skills"),
    shell:
        "sdar-bench warmstart --model {wildcards.model} --model-dir {params.base} --out {params.out} {params.flags} "
        "--set train.threads={threads} > {log} 2>&1"
