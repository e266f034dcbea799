# Report: the cells' eval.json, metrics.jsonl and run.json collected into tidy CSVs, then Table 1 and the
# stability plots; `compare` sets only a new method's cells against the stored baselines.


rule collect:
    input:
        cell_evals(RUNS),
    output:
        results=f"{OUT}/report/results.csv",
        steps=f"{OUT}/report/steps.csv",
        manifests=f"{OUT}/report/manifests.jsonl",
    log:
        f"{OUT}/logs/collect.log",
    conda:
        CONDA_ENV
    params:
        profile=PROFILE,
        out=lambda wildcards, output: parent(output.results),
        cells=cell_dirs(RUNS),
    shell:
        "sdar-bench collect --profile {params.profile} --out {params.out} {params.cells} > {log} 2>&1"


rule tables:
    input:
        results=f"{OUT}/report/results.csv",
        reference="results/reference/paper_table1.csv",
    output:
        TABLES,
    log:
        f"{OUT}/logs/tables.log",
    conda:
        CONDA_ENV
    params:
        out=lambda wildcards, output: parent(output[0]),
    shell:
        "sdar-bench tables --results {input.results} --reference {input.reference} --out {params.out} > {log} 2>&1"


rule plots:
    input:
        steps=f"{OUT}/report/steps.csv",
    output:
        FIGURES,
    log:
        f"{OUT}/logs/plots.log",
    conda:
        CONDA_ENV
    params:
        out=lambda wildcards, output: parent(output[0]),
        envs=config["envs"],
        models=config["models"],
    shell:
        "sdar-bench plots --steps {input.steps} --out {params.out} --envs {params.envs} --models {params.models} "
        "> {log} 2>&1"


rule collect_method:
    input:
        lambda wildcards: cell_evals(method_sheet(wildcards)),
    output:
        results=f"{OUT}/compare/{{method}}/report/results.csv",
        steps=f"{OUT}/compare/{{method}}/report/steps.csv",
        manifests=f"{OUT}/compare/{{method}}/report/manifests.jsonl",
    log:
        f"{OUT}/logs/compare/{{method}}.collect.log",
    conda:
        CONDA_ENV
    params:
        profile=PROFILE,
        out=lambda wildcards, output: parent(output.results),
        cells=lambda wildcards: cell_dirs(method_sheet(wildcards)),
    shell:
        "sdar-bench collect --profile {params.profile} --out {params.out} {params.cells} > {log} 2>&1"


rule compare:
    input:
        results=f"{OUT}/compare/{{method}}/report/results.csv",
        baselines=f"{BASELINES}/results.csv",
        manifests=f"{BASELINES}/manifests.jsonl",
    output:
        f"{OUT}/compare/{{method}}.csv",
        f"{OUT}/compare/{{method}}.md",
    log:
        f"{OUT}/logs/compare/{{method}}.log",
    conda:
        CONDA_ENV
    params:
        method=lambda wildcards: method_from_slug(wildcards.method),
        baselines=lambda wildcards, input: parent(input.baselines),
        out=lambda wildcards, output: parent(output[0]),
    shell:
        "sdar-bench compare --method {params.method:q} --results {input.results} --baselines {params.baselines} "
        "--out {params.out} > {log} 2>&1"
