"""One rule param per setting: what a rule gives Snakemake and what its script gets back."""

from __future__ import annotations

import pytest
from snakemake.iocontainers import Params

from secateurs.workflow.params import flat_settings, settings_of, tracked, tracked_per

HEAL = {"learning_rate": 1e-3, "lora": {"r": 16, "target_modules": ["q_proj", "v_proj"]},
        "distill": {"enabled": False, "temperature": 1.0}, "deepspeed": None, "data": {}}


def _params(**named) -> Params:
    return Params(fromdict=named)


def test_each_setting_is_a_param_whose_value_names_its_key():
    params = tracked(training=HEAL)
    assert params["setting__training__lora__r"] == ("training.lora.r", 16)
    assert params["setting__training__learning_rate"] == ("training.learning_rate", 1e-3)
    # lists, None and empty sections are single values
    assert params["setting__training__lora__target_modules"][1] == ["q_proj", "v_proj"]
    assert params["setting__training__data"] == ("training.data", {})
    assert len(params) == 7


def test_the_script_gets_its_sections_back_as_given():
    mix = {"heldout_docs": 4, "ratio": {"en": 2, "zh": 1}}
    sources = {"zhwiki-demo": {"language": "zh"}, "cosmopedia": {"language": "en"}}
    given = _params(code="abc", **tracked(training=HEAL, settings=mix, sources=sources),
                    checkpoints="results/checkpoints/heal")
    assert settings_of(given) == {"training": HEAL, "settings": mix, "sources": sources}


def test_maps_with_keys_that_are_not_names_stay_whole():
    """Subset weights and source names can hold dots or dashes: a dotted path through them
    could not be split back."""
    weights = {"web_samples_v2": 0.5, "khanacademy.v1": 0.5}
    assert flat_settings({"subsets": weights}) == {"subsets": weights}
    assert settings_of(_params(**tracked(settings={"subsets": weights}))) == {
        "settings": {"subsets": weights}}


def test_per_wildcard_params_resolve_per_job():
    settings = {"a": {"threads": 2, "variant": "zh-hans"}, "b": {"threads": 4, "variant": "zh-tw"}}
    params = tracked_per("source", ["a", "b"], settings=settings.__getitem__)
    assert sorted(params) == ["setting__settings__threads", "setting__settings__variant"]
    job = {name: get({"source": "b"}) for name, get in params.items()}
    assert settings_of(_params(**job)) == {"settings": settings["b"]}


def test_per_wildcard_maps_below_a_section_stay_whole():
    """Two text sources, one with Cosmopedia subset weights and one without: the same
    params, as the Pruned Yi recipe has them."""
    settings = {"cosmo": {"subsets": {"stanford": 0.5, "wikihow": 0.5}, "seed": 0},
                "zhwiki": {"subsets": None, "seed": 0}}
    params = tracked_per("source", list(settings), settings=settings.__getitem__)
    assert sorted(params) == ["setting__settings__seed", "setting__settings__subsets"]
    job = {name: get({"source": "cosmo"}) for name, get in params.items()}
    assert settings_of(_params(**job)) == {"settings": settings["cosmo"]}


def test_per_wildcard_settings_must_name_the_same_keys():
    settings = {"a": {"threads": 2}, "b": {"threads": 4, "variant": "zh-tw"}}
    with pytest.raises(ValueError, match="source='b'.*same settings for every job"):
        tracked_per("source", ["a", "b"], settings=settings.__getitem__)
