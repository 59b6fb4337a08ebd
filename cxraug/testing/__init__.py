"""The generator-plugin contract suite, for plugin authors and for cxraug's own tests.

In a pytest file of a plugin's package (docs/plugins.md, "Testing a plugin")::

    from cxraug.testing import GeneratorContract

    class TestMyPlugin(GeneratorContract):
        plugin = "myplugin"  # the registered entry-point name, or the Generator subclass

pytest then runs every check on the plugin's ``tiny_config()``. Each check is also a plain
function taking the plugin class (``run_contract`` runs them all), for other runners.
"""

from cxraug.testing.contract import (
    SPEC,
    GeneratorContract,
    check_config_rejects_unknown_keys,
    check_sample_options_reject_unknown,
    check_train_step_sample_state_export,
    run_contract,
)

__all__ = [
    "SPEC",
    "GeneratorContract",
    "check_config_rejects_unknown_keys",
    "check_sample_options_reject_unknown",
    "check_train_step_sample_state_export",
    "run_contract",
]
