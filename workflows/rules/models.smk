# Environments and models: each environment's data and fixed task panels (checked by playing the expert on the
# first eval tasks), the tokenizer corpus (expert episodes of every environment) and the model zoo's aliases.


rule env_data:
    output:
        f"{OUT}/data/envs/{{env}}.json",
    log:
        f"{OUT}/logs/env_data/{{env}}.log",
    conda:
        CONDA_ENV
    params:
        episodes=config["env_check_episodes"],
        cache=ENV_CACHE,
        flags=lambda wildcards: suite_flags(wildcards.env),
        settings=lambda wildcards: settings(wildcards.env, "envs"),
    shell:
        "sdar-bench envs play --env {wildcards.env} --policy expert --split eval --episodes {params.episodes} "
        "--cache {params.cache} {params.flags} > {output} 2> {log}"


rule corpus:
    input:
        expand(f"{OUT}/data/envs/{{env}}.json", env=ALL_ENVS),
    output:
        f"{OUT}/data/corpus.txt",
    log:
        f"{OUT}/logs/corpus.log",
    conda:
        CONDA_ENV
    params:
        episodes=config["corpus_episodes"],
        cache=ENV_CACHE,
        flags=suite_flags(),
        settings=settings(None, "envs"),
    shell:
        "sdar-bench envs corpus --out {output} --episodes {params.episodes} --cache {params.cache} {params.flags} "
        "> {log} 2>&1"


rule build_model:
    input:
        corpus=lambda wildcards: corpus_input(wildcards.model),
    output:
        f"{OUT}/models/{{model}}/config.json",
    log:
        f"{OUT}/logs/build_model/{{model}}.log",
    conda:
        CONDA_ENV
    params:
        out=lambda wildcards, output: parent(output[0]),
        corpus=lambda wildcards, input: " ".join(f"--corpus {f}" for f in input.corpus),
        flags=suite_flags(profile=False),
        settings=settings(None, "models"),
    shell:
        "sdar-bench models build {wildcards.model} --out {params.out} {params.corpus} {params.flags} > {log} 2>&1"
