"""The checkout imports in place: ``kernels/`` at the top level becomes ``fastcnn.kernels``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Drops any installed copy's finder (an editable install maps fastcnn.kernels itself), so
# what is left is what a user at the repository root has after a plain `pip install .`:
# the checkout's fastcnn/ first on sys.path, with no fastcnn/kernels folder in it.
_WITHOUT_INSTALLED_FINDERS = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if 'editable' not in (getattr(f, '__module__', '') or '').lower() "
    "and 'editable' not in type(f).__name__.lower()]; "
)


def test_import_fastcnn_at_the_repository_root_uses_the_checkouts_kernels():
    code = (_WITHOUT_INSTALLED_FINDERS + "sys.path.insert(0, '.'); import fastcnn; "
            "import fastcnn.kernels.contract as c; fastcnn.Sequential; print(c.__file__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == REPO / "kernels" / "contract.py"


def test_registering_the_source_kernels_leaves_an_installed_layout_alone(tmp_path):
    from fastcnn._kernels_path import NAME, register_source_kernels

    (tmp_path / "fastcnn" / "kernels").mkdir(parents=True)
    before = sys.modules.get(NAME)
    register_source_kernels(str(tmp_path / "fastcnn"))
    assert sys.modules.get(NAME) is before
