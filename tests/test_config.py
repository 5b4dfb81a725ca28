import pytest

from core.config import ConfigError, DataConfig, JobConfig


def test_defaults_round_trip_through_yaml(tmp_path):
    config = JobConfig(task="text-classification", model="minilm-l6", strategy="head-only")
    config.data.path = "assets/examples/x.csv"
    config.data.columns = {"text": "body", "label": "team"}
    config.train.epochs = 3
    path = config.save(tmp_path / "config.yaml")
    again = JobConfig.load(path)
    # everything round-trips; the relative data path is read from the config file's folder
    assert again == config.with_paths_from(tmp_path)
    assert again.data.path == str(tmp_path / "assets" / "examples" / "x.csv")
    assert again.train.epochs == 3.0 and isinstance(again.train.epochs, float)


def test_paths_are_read_from_the_config_files_folder(tmp_path, monkeypatch):
    folder, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "t.csv").write_text("text,label\n")
    elsewhere.mkdir()
    (elsewhere / "only-here.csv").write_text("text,label\n")
    (folder / "job.yaml").write_text("data:\n  path: data/t.csv\n  validation_path: only-here.csv\n"
                                     "model: ./my-model\n")
    monkeypatch.chdir(elsewhere)
    config = JobConfig.load(folder / "job.yaml")
    assert config.data.path == str(folder / "data" / "t.csv")  # beside the config, wherever the shell is
    assert config.data.validation_path == str(elsewhere / "only-here.csv")  # only the working folder has it
    assert config.model == str(folder / "my-model")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert JobConfig(data=DataConfig(path="~/x.csv")).with_paths_from(folder).data.path == str(tmp_path / "x.csv")
    assert JobConfig(model="minilm-l6").with_paths_from(folder).model == "minilm-l6"  # a name stays a name


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


def test_a_config_without_a_model_gets_its_tasks_default():
    """A user's first config names the task and the data only: the model follows the task (a chat model for a
    classifier failed the job)."""
    from core.catalog import default_for

    for task in ("chat", "text-classification", "image-classification", "text-regression"):
        config = JobConfig.from_yaml(f"task: {task}\ndata:\n  path: x.csv\n")
        assert config.model == default_for(task).key
        assert JobConfig.from_yaml(config.to_yaml()).model == config.model  # the saved config names it
    assert JobConfig.from_yaml("task: text-classification\nmodel: my-encoder\n").model == "my-encoder"
    switched = JobConfig().with_overrides(["task=image-classification"])
    assert switched.model == default_for("image-classification").key and switched.strategy == "auto"
    kept = JobConfig.from_yaml("task: chat\nmodel: qwen2.5-0.5b\nstrategy: full\n").with_overrides(
        ["task=preference"])
    assert kept.model == "qwen2.5-0.5b" and kept.strategy == "full"
    assert JobConfig.from_yaml("task: nonsense\n").problems()[0].startswith("task 'nonsense' is unknown")
