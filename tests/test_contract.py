"""One contract suite, run over every registered generator plugin on its tiny config,
through the public entry point plugin authors use (cxraug.testing)."""

from __future__ import annotations

import pytest

from cxraug import registry
from cxraug.errors import UserError
from cxraug.testing import (
    check_config_rejects_unknown_keys,
    check_sample_options_reject_unknown,
    check_train_step_sample_state_export,
)

PLUGINS = registry.available()


def test_builtin_plugins_are_registered() -> None:
    assert {"cgan", "diffusion"} <= set(PLUGINS)


def test_unknown_plugin_lists_known() -> None:
    with pytest.raises(UserError, match=r"unknown generator plugin 'gan'; known: .*cgan"):
        registry.get("gan")


@pytest.mark.parametrize("name", PLUGINS)
def test_config_rejects_unknown_keys(name: str) -> None:
    check_config_rejects_unknown_keys(registry.get(name))


@pytest.mark.parametrize("name", PLUGINS)
def test_train_step_sample_state_export(name: str, tmp_path) -> None:
    check_train_step_sample_state_export(registry.get(name), tmp_path)


@pytest.mark.parametrize("name", PLUGINS)
def test_sample_options_reject_unknown(name: str) -> None:
    check_sample_options_reject_unknown(registry.get(name))
