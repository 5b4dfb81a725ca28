import pytest

from core.config import ConfigError, JobConfig


def test_defaults_round_trip_through_yaml(tmp_path):
    config = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only")
    config.data.path = "assets/examples/x.csv"
    config.data.columns = {"text": "body", "label": "team"}
    config.train.epochs = 3
    path = config.save(tmp_path / "config.yaml")
    again = JobConfig.load(path)
    assert again == config
    assert again.train.epochs == 3.0 and isinstance(again.train.epochs, float)


def test_every_problem_is_reported_at_once():
    config = JobConfig(task="chat", strategy="head-only", model="")
    config.train.learning_rate = -1
    config.train.batch_size = 0
    config.data.validation_fraction = 2.0
    with pytest.raises(ConfigError) as err:
        config.validate()
    text = str(err.value)
    assert len(err.value.problems) == 6
    for words in ("strategy 'head-only' does not apply to chat", "model is empty", "data.path is empty",
                  "train.learning_rate is -1", "train.batch_size is 0", "validation_fraction is 2.0"):
        assert words in text


def test_unknown_keys_and_wrong_types_are_named():
    with pytest.raises(ConfigError) as err:
        JobConfig.from_yaml("task: chat\nmodle: x\ntrain:\n  epochs: three\n  batch_size: 2.5\n  foo: 1\n")
    text = str(err.value)
    assert "unknown setting 'modle'" in text
    assert "unknown setting 'train.foo'" in text
    assert "train.epochs must be a number, not 'three'" in text
    assert "train.batch_size must be a whole number, not 2.5" in text


def test_not_a_mapping_and_broken_yaml():
    with pytest.raises(ConfigError, match="must be a mapping"):
        JobConfig.from_yaml("- a\n- b\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        JobConfig.from_yaml("task: [unclosed\n")


def test_overrides_parse_values_and_reject_bad_keys():
    config = JobConfig().with_overrides(["train.epochs=3", "train.learning_rate=2e-4", "model=qwen2.5-0.5b",
                                         "data.validation_fraction="])
    assert config.train.epochs == 3.0 and config.train.learning_rate == 2e-4 and config.model == "qwen2.5-0.5b"
    with pytest.raises(ConfigError, match="not key=value"):
        JobConfig().with_overrides(["train.epochs"])
    with pytest.raises(ConfigError, match="unknown setting 'train.epoch'"):
        JobConfig().with_overrides(["train.epoch=3"])
    with pytest.raises(ConfigError, match="'task' has no sub-settings"):
        JobConfig().with_overrides(["task.x=1"])


def test_absurd_numbers_are_refused():
    config = JobConfig()
    config.data.path = "x.csv"
    config.train.max_length = 10**9
    config.train.lora_dropout = 1.5
    with pytest.raises(ConfigError) as err:
        config.validate()
    assert "train.max_length is 1000000000" in str(err.value)
    assert "train.lora_dropout is 1.5" in str(err.value)
