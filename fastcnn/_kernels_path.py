"""Makes ``fastcnn.kernels`` importable from a source checkout.

An install maps the top-level ``kernels/`` folder to the subpackage ``fastcnn.kernels``
(setup.py's ``package_dir``). A checkout has no ``fastcnn/kernels`` folder, so when
``fastcnn`` is imported from the checkout itself (the repository root on ``sys.path``,
which shadows any installed copy) the subpackage is registered here from the
sibling ``kernels/`` folder. Installed copies are left alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys

NAME = "fastcnn.kernels"


def register_source_kernels(package_dir: str) -> None:
    """Register ``<package_dir>/../kernels`` as ``fastcnn.kernels`` when fastcnn runs from a
    checkout (no ``<package_dir>/kernels`` folder) and nothing has registered it yet."""
    if NAME in sys.modules or os.path.isdir(os.path.join(package_dir, "kernels")):
        return
    folder = os.path.join(os.path.dirname(package_dir), "kernels")
    init = os.path.join(folder, "__init__.py")
    if not os.path.isfile(os.path.join(folder, "contract.py")):
        return  # not a checkout: leave the import to the install's own finder
    spec = importlib.util.spec_from_file_location(NAME, init, submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[NAME]
        raise
