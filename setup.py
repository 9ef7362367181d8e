"""Build script: packages plus the optional Cython kernels.

``kernels/`` installs as the subpackage ``fastcnn.kernels`` so that nothing
called ``kernels`` lands at the top of site-packages. The Cython extension is
optional: on a machine without a C compiler (or without Cython) ``pip install .``
still succeeds, and the ``cython`` backend reports itself unavailable with the
reason.
"""

from setuptools import find_packages, setup

PACKAGE_DIR = {"fastcnn": "fastcnn", "fastcnn.kernels": "kernels"}
PACKAGES = [
    prefix + sub
    for package, folder in PACKAGE_DIR.items()
    for prefix, sub in [(package, "")] + [(package + ".", p) for p in find_packages(folder)]
]

setup(
    package_dir=PACKAGE_DIR,
    packages=PACKAGES,
)
