"""Configuration: dataclass defaults < YAML < CLI flags; unknown keys and bad values fail with the choices."""

import dataclasses
import json
import typing

import pytest
import yaml

from sdar import configlib
from sdar.config import Config, write_run_files
from sdar.configlib import ConfigError


def test_defaults_come_from_dataclasses():
    cfg = configlib.load(Config)
    assert (
        cfg.run.seed == 0
        and cfg.models.tiny_qwen3.hidden_size == 128
        and cfg.models.tiny_qwen2_5.arch == "qwen2"
    )


def test_precedence_dataclass_then_yaml_then_flags(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text(
        yaml.safe_dump(
            {"run": {"seed": 3, "model": "tiny-qwen2.5"}, "models": {"tiny_qwen3": {"num_layers": 2}}}
        )
    )
    b = tmp_path / "b.yaml"
    b.write_text(yaml.safe_dump({"run": {"seed": 4}}))
    cfg = configlib.load(Config, [a, b])
    assert (cfg.run.seed, cfg.run.model, cfg.models.tiny_qwen3.num_layers) == (4, "tiny-qwen2.5", 2)
    # a partial section keeps the other fields of that section's own default (arch stays qwen3)
    assert cfg.models.tiny_qwen3.arch == "qwen3" and cfg.models.tiny_qwen3.hidden_size == 128
    cfg = configlib.load(Config, [a, b], extra={"run": {"seed": 5}})
    assert cfg.run.seed == 5
    cfg = configlib.load(
        Config, [a, b], ["run.seed=6", "models.tiny_qwen3.rope_theta=500"], extra={"run": {"seed": 5}}
    )
    assert cfg.run.seed == 6 and cfg.models.tiny_qwen3.rope_theta == 500.0 and cfg.run.model == "tiny-qwen2.5"


def test_unknown_key_names_the_key_and_the_choices():
    with pytest.raises(
        ConfigError,
        match=r"unknown config key run\.sed; valid keys under run: env, method, model, profile, seed",
    ):
        configlib.load(Config, sets=["run.sed=1"])
    with pytest.raises(ConfigError, match="unknown config key bogus"):
        configlib.build(Config, {"bogus": 1})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("run.seed=one", r"run\.seed: expected an integer, got 'one'"),
        (
            "run.profile=huge",
            r"run\.profile: 'huge' is not a valid choice; valid choices: 'smoke', 'mini', 'paper'",
        ),
        ("models.tiny_qwen3.arch=llama", r"valid choices: 'qwen2', 'qwen3'"),
        ("models.tiny_qwen3.tie_word_embeddings=3", "expected true or false"),
        ("run.model=gpt-9", r"unknown model alias 'gpt-9'; valid choices: tiny-qwen2.5, tiny-qwen3"),
        ("models=3", "expected a mapping for section ModelsConfig"),
        ("seed", "expected KEY=VALUE"),
    ],
)
def test_bad_values_fail_with_a_clear_message(item, message):
    with pytest.raises(ConfigError, match=message):
        configlib.load(Config, sets=[item])


def test_bad_yaml_file(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        configlib.load(Config, [p])
    with pytest.raises(ConfigError, match="config file not found"):
        configlib.load(Config, [tmp_path / "missing.yaml"])


def _dataclasses_in(cls, seen=None):
    seen = seen if seen is not None else set()
    if cls in seen:
        return seen
    seen.add(cls)
    for tp in typing.get_type_hints(cls).values():
        for t in (tp, *typing.get_args(tp)):
            if dataclasses.is_dataclass(t):
                _dataclasses_in(t, seen)
    return seen


def test_every_config_field_has_a_docstring():
    for cls in _dataclasses_in(Config):
        docs = configlib.field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, f"{cls.__name__}: fields without a docstring: {missing}"


def test_resolved_config_round_trips_and_run_json(tmp_path):
    cfg = configlib.load(Config, sets=["run.seed=7"])
    write_run_files(cfg, tmp_path)
    again = configlib.load(Config, [tmp_path / "config.resolved.yaml"])
    assert again == cfg
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["seed"] == 7 and run["model"]["alias"] == "tiny-qwen3"
    assert len(run["git"]["sha"]) in (40, 7) and isinstance(run["git"]["dirty"], bool)
    assert run["packages"]["torch"].startswith("2.") and run["hardware"]["cpu_count"] >= 1
    # the instruction set torch's kernels use: another one trains other weights from the same seed
    import torch

    assert run["hardware"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "cpu" in run["hardware"]


def test_run_json_of_a_resumed_run_keeps_the_earlier_legs(tmp_path):
    cfg = configlib.load(Config, sets=["run.seed=3"])
    write_run_files(cfg, tmp_path)
    first = json.loads((tmp_path / "run.json").read_text())
    write_run_files(cfg, tmp_path)  # a fresh start over the directory: the old manifest is not a leg
    assert "legs" not in json.loads((tmp_path / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps(first))
    write_run_files(cfg, tmp_path, resuming=True)
    write_run_files(cfg, tmp_path, resuming=True)
    run = json.loads((tmp_path / "run.json").read_text())
    assert len(run["legs"]) == 2 and run["legs"][0] == first and "legs" not in run["legs"][1]
    assert run["seed"] == 3 and run["legs"][1]["seed"] == 3
    # an unreadable manifest stops the resume with the path named, and stays as it was
    for bad in ("{not json", "[1, 2]"):
        (tmp_path / "run.json").write_text(bad)
        with pytest.raises(configlib.ConfigError, match="run.json"):
            write_run_files(cfg, tmp_path, resuming=True)
        assert (tmp_path / "run.json").read_text() == bad
