"""The 0.1 module names keep importing for one release, with a warning naming the new place."""
import importlib
import sys

import pytest

from polyhead._compat import MOVED


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_module_name_imports_the_new_module_with_a_warning(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    # the module keeps its own identity, so its relative imports still resolve in its package
    assert module.__spec__.name == new
    assert module.__spec__.parent == module.__package__


def test_old_names_still_offer_their_public_functions():
    sys.modules.pop("polyhead.serve", None)
    with pytest.warns(DeprecationWarning):
        from polyhead.serve import ServeSettings, create_app  # noqa: F401
    from polyhead.serving import create_app as new_create_app

    assert create_app is new_create_app


def test_polyhead_train_is_the_function_and_the_old_module_name_says_where_it_went():
    import polyhead
    from polyhead.training.api import train

    with pytest.raises(ImportError, match=r"polyhead.train is a function now .*the 0.1 module polyhead.train is polyhead.training.loop"):
        importlib.import_module("polyhead.train")
    assert polyhead.train is train  # a failed import of the old name does not replace it
