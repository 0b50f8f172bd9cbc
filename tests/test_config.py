"""Bad configuration stops before any job runs, naming the key and the fix."""

from __future__ import annotations

import copy

import pytest
import yaml

from secateurs.config import ConfigError, validate_config
from workflow import REPO, snakemake

SCHEMA = REPO / "secateurs" / "schema.yaml"


@pytest.fixture()
def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def problems(config: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config(config, SCHEMA, basedir=REPO)
    return str(caught.value)


def test_demo_config_is_valid(demo_config):
    validate_config(demo_config, SCHEMA, basedir=REPO)


def test_missing_key_is_named(demo_config):
    del demo_config["data"]["sources"]["cosmopedia"]["weight"]
    assert "`data.sources.cosmopedia.weight` is missing" in problems(demo_config)


def test_wrong_type_is_named(demo_config):
    demo_config["heal"]["learning_rate"] = "fast"
    message = problems(demo_config)
    assert "`heal.learning_rate`" in message and "wrong type" in message


def test_misspelled_key_is_named(demo_config):
    demo_config["heal"]["lerning_rate"] = 1e-4
    assert "lerning_rate" in problems(demo_config)


def test_too_many_layers_removed(demo_config):
    demo_config["prune"]["plan"]["n_remove"] = 8
    message = problems(demo_config)
    assert "`prune.plan.n_remove` = 8" in message and "at most 7" in message


def test_manual_slices_out_of_range(demo_config):
    demo_config["prune"]["plan"] = {"strategy": "manual", "slices": [[0, 4], [6, 12]]}
    assert "[6, 12)" in problems(demo_config)


def test_missing_dump_file(demo_config):
    demo_config["data"]["sources"]["zhwiki-demo"]["path"] = "no/such/dump.xml.bz2"
    assert "`data.sources.zhwiki-demo.path`" in problems(demo_config)


def test_a_task_that_needs_a_download_is_refused(demo_config):
    demo_config["evaluate"]["tasks"].append({"name": "xnli_es"})
    message = problems(demo_config)
    assert "`evaluate.tasks[2]`" in message and "'xnli_es' has no local copy" in message
    assert "allow_download: true" in message
    demo_config["evaluate"]["allow_download"] = True  # a machine with the hub: allowed
    validate_config(demo_config, SCHEMA, basedir=REPO)


def test_a_local_task_without_its_files_is_refused(demo_config, tmp_path):
    demo_config["evaluate"]["tasks"] = [{"name": "cmmlu_agronomy", "limit": 50}]
    message = problems(demo_config)
    assert "'cmmlu_agronomy' reads haonan-li+CMMLU/dev/agronomy.csv" in message
    assert "evaluate.benchmarks_dir" in message
    (tmp_path / "haonan-li+CMMLU" / "dev").mkdir(parents=True)
    (tmp_path / "haonan-li+CMMLU" / "dev" / "agronomy.csv").write_text(",Question\n")
    demo_config["evaluate"]["benchmarks_dir"] = str(tmp_path)
    assert "test/agronomy.csv" in problems(demo_config)  # still one file short
    (tmp_path / "haonan-li+CMMLU" / "test").mkdir()
    (tmp_path / "haonan-li+CMMLU" / "test" / "agronomy.csv").write_text(",Question\n")
    validate_config(demo_config, SCHEMA, basedir=REPO)


def test_demo_tasks_need_their_folder(demo_config):
    demo_config["evaluate"]["benchmarks_dir"] = None
    assert "'demo_world_en' reads demo-world-en.jsonl" in problems(demo_config)


@pytest.mark.parametrize("change, key", [
    (lambda c: c["prune"]["plan"].update(n_remove=20), "prune.plan.n_remove"),
    (lambda c: c["heal"].update(batch_size="big"), "heal.batch_size"),
    (lambda c: c["data"].pop("sources"), "data.sources"),
    (lambda c: c["evaluate"]["tasks"].append({"name": "hellaswag"}), "evaluate.tasks[2]"),
])
def test_snakemake_stops_before_any_job(tmp_path, demo_config, change, key):
    bad = copy.deepcopy(demo_config)
    change(bad)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    # The bad file is the whole config, as a recipe given with --configfile would be.
    result = snakemake(tmp_path / "work", "--dry-run", configfiles=(tmp_path / "bad.yaml",),
                       check=False, over_demo=False)
    assert result.returncode != 0
    assert f"`{key}" in result.stdout + result.stderr
    assert not (tmp_path / "work" / "results").exists()


# ---- steering a run safely (issue 11)


def test_command_line_numbers_are_read_by_their_schema_type(demo_config):
    """Snakemake hands `--config 'chat={learning_rate: 1.0e-4}'` over as the string '1.0e-4'."""
    from secateurs.config import coerce_overrides

    demo_config["chat"]["learning_rate"] = "1.0e-4"
    demo_config["heal"]["gradient_checkpointing"] = "true"
    demo_config["data"]["sources"]["zhwiki-demo"]["weight"] = "3"
    coerce_overrides(demo_config)
    assert demo_config["chat"]["learning_rate"] == 1e-4
    assert demo_config["heal"]["gradient_checkpointing"] is True
    assert demo_config["data"]["sources"]["zhwiki-demo"]["weight"] == 3
    validate_config(demo_config, SCHEMA, basedir=REPO)


def test_one_value_overrides_from_the_command_line(tmp_path):
    result = snakemake(tmp_path, "-n", "--config", "chat={learning_rate: 1.0e-4}", check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def test_an_existing_local_path_is_never_a_hub_id(tmp_path):
    from secateurs.locations import looks_local

    (tmp_path / "models" / "tiny").mkdir(parents=True)
    assert looks_local("models/tiny", tmp_path)  # the shape of a hub id, but it exists
    assert not looks_local("models/tiny", tmp_path / "elsewhere")
    assert not looks_local("01-ai/Yi-1.5-6B", tmp_path)


def test_a_source_that_is_neither_path_nor_hub_id_stops(demo_config):
    demo_config["base_model"]["source"] = "not a model!"
    message = problems(demo_config)
    assert "`base_model.source`: not a model! does not exist" in message


def test_pickle_only_model_dir_says_allow_pickle_cannot_help(demo_config, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"num_hidden_layers": 8}')
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"")
    demo_config["base_model"]["source"] = str(tmp_path / "m")
    demo_config["base_model"]["allow_pickle"] = True
    message = problems(demo_config)
    assert "only pickled weights" in message and "alone does not help" in message


def test_remote_code_without_trust_is_refused(demo_config, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(
        '{"num_hidden_layers": 8, "auto_map": {"AutoModelForCausalLM": "x.Model"}}')
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    demo_config["base_model"]["source"] = str(tmp_path / "m")
    assert "`base_model.trust_remote_code` is false" in problems(demo_config)


@pytest.mark.parametrize("slices, expected", [
    ([[0, 4], [6, 3]], "[6, 3) is empty or reversed"),
    ([[0, 5], [3, 8]], "[0, 5) and [3, 8) overlap"),
])
def test_manual_slices_reversed_or_overlapping(demo_config, slices, expected):
    demo_config["prune"]["plan"] = {"strategy": "manual", "slices": slices}
    assert expected in problems(demo_config)


def test_warmup_ratio_of_one_is_refused_before_any_job(demo_config):
    demo_config["heal"]["warmup_ratio"] = 1
    assert "`heal.warmup_ratio` = 1" in problems(demo_config)


def test_gguf_source_is_accepted_and_checked(demo_config, tmp_path):
    """A .gguf base model: a missing file is named with the fix; an existing one's layer
    count (read from its metadata header) bounds the plan like a model directory's."""
    demo_config["base_model"]["source"] = str(tmp_path / "missing.gguf")
    assert "GGUF file" in problems(demo_config) and ".ci/fetch-smollm2" in problems(demo_config)
    gguf = tmp_path / "tiny.gguf"
    write_gguf(gguf, block_count=6)
    demo_config["base_model"]["source"] = str(gguf)
    validate_config(demo_config, SCHEMA, basedir=REPO)
    demo_config["prune"]["plan"]["n_remove"] = 6
    assert "the base model has 6 layers" in problems(demo_config)


def write_gguf(path, *, block_count: int) -> None:
    """A metadata-only GGUF file written by the gguf package itself (no tensors)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b"])  # before the layer count: the reader must skip it
    writer.add_token_scores([0.5, 0.25])
    writer.add_block_count(block_count)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_hub_options_on_a_local_chat_file_are_refused_before_any_job(demo_config):
    """`data_files` (or config, or a split other than train) on one local file would be
    ignored: the check names the entry and the fix (issue 21)."""
    demo_config["chat"]["data"][0]["data_files"] = "other.jsonl"
    with pytest.raises(ConfigError, match=r"`chat\.data\[0\]`: data_files apply to hub datasets.*Fix"):
        validate_config(demo_config, SCHEMA, basedir=REPO)
    demo_config["chat"]["data"][0].pop("data_files")
    demo_config["chat"]["data"][0]["split"] = "train"  # the default: nothing to ignore
    validate_config(demo_config, SCHEMA, basedir=REPO)
