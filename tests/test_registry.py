"""``Registry``: the one way every part looks a name up (commands, metrics, generators, feature spaces,
preference models, samplers, study actions)."""

from __future__ import annotations

import sys

import pytest

from harness.errors import UserError
from harness.registry import Registry, UnknownNameError


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A module nobody has imported yet: ``plugin_for_registry_test``."""
    (tmp_path / "plugin_for_registry_test.py").write_text("def double(x):\n    return 2 * x\nNOT_CALLABLE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "plugin_for_registry_test"
    sys.modules.pop("plugin_for_registry_test", None)


def test_a_lazy_entry_is_imported_on_first_lookup_only(plugin):
    reg = Registry("widget", {"double": f"{plugin}:double"}, check=callable, expected="a function")
    assert "double" in reg and reg.names() == ["double"] and list(reg) == ["double"]
    assert plugin not in sys.modules  # listing and `in` import nothing
    assert reg.target("double") == f"{plugin}:double"
    assert reg["double"](4) == 8 and plugin in sys.modules
    assert reg.target("double") is None  # resolved once, kept


def test_unknown_names_bad_targets_and_wrong_kinds_are_one_line_user_errors(plugin):
    reg = Registry(
        "widget",
        {
            "double": f"{plugin}:double",
            "three": f"{plugin}:NOT_CALLABLE",
            "gone": f"{plugin}:missing",
            "nomodule": "no_such_module_xyz:f",
        },
        check=callable,
        expected="a function",
    )
    with pytest.raises(
        UnknownNameError, match=r"^unknown widget 'tripple'; registered: double, gone, nomodule, three$"
    ):
        reg["tripple"]
    err = UnknownNameError("unknown widget 'x'")
    assert isinstance(err, UserError) and isinstance(err, KeyError) and str(err) == "unknown widget 'x'"
    assert reg.get("tripple") is None  # Mapping.get: an unknown name is a KeyError
    with pytest.raises(UserError, match="widget 'three' is not a function"):
        reg["three"]
    for name in ("gone", "nomodule"):
        with pytest.raises(UserError, match=f"widget '{plugin}:missing' cannot be imported|no_such_module_xyz"):
            reg[name]


def test_registration_replaces_a_lazy_string_but_never_another_object(plugin):
    reg: Registry = Registry("widget", {"double": f"{plugin}:double"})

    def mine(x):
        return x

    reg.register("double", mine)  # the module registering itself over its lazy string
    assert reg["double"] is mine
    with pytest.raises(ValueError, match="widget 'double' is already registered"):
        reg.register("double", lambda x: x)
    assert reg.register("triple")(mine) is mine and reg["triple"] is mine  # as a decorator
    reg.unregister("triple")
    assert "triple" not in reg


def test_paths_name_an_unregistered_entry_where_allowed(plugin):
    open_reg = Registry("metric", {}, paths=True)
    assert open_reg[f"{plugin}:double"](1) == 2
    with pytest.raises(UnknownNameError, match=r"\(or give module:attr\)"):
        open_reg["double"]
    with pytest.raises(UnknownNameError):
        Registry("sampler", {})[f"{plugin}:double"]  # a closed registry takes only its names


def test_every_registry_of_the_project_is_one_registry():
    from harness.cli import COMMANDS
    from harness.generation.generate import GENERATOR_CHECKS, GENERATORS
    from harness.metrics.extractors.feature_spaces import FEATURE_SPACES
    from harness.metrics.preference import PREFERENCE_MODELS
    from harness.metrics.registry import METRICS
    from imagen.samplers.samplers import SAMPLERS
    from raters_ui.commands import STUDY_ACTIONS

    for reg in (
        COMMANDS,
        GENERATORS,
        GENERATOR_CHECKS,
        FEATURE_SPACES,
        PREFERENCE_MODELS,
        METRICS,
        SAMPLERS,
        STUDY_ACTIONS,
    ):
        assert isinstance(reg, Registry) and len(reg) > 0
        for name in reg:
            reg[name]  # every registered entry resolves to its kind (no stale "module:attr")


def test_a_bad_path_and_an_equal_registration_again():
    reg: Registry = Registry("widget", {"odd": "no_colon_or_dot"})
    with pytest.raises(UserError, match="widget 'no_colon_or_dot' is not a 'package.module:attr' path"):
        reg["odd"]
    reg.register("t", ("same", 1))
    reg.register("t", ("same", 1))  # e.g. register_command called twice with the same spec
    with pytest.raises(ValueError):
        reg.register("t", ("other", 2))
