"""The reporting layer: cells -> tidy CSVs (`collect`) -> Table 1 (`tables`), training curves (`plots`),
a new method against the stored baselines (`compare`, `baselines`), with the seed statistics in `stats`.

Flow: `sdar-bench collect` reads each cell's eval.json / metrics.jsonl / run.json into `report/results.csv`,
`report/steps.csv` and `report/manifests.jsonl`; every other verb reads those files only.
"""
