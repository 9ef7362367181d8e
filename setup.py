"""Build script: packages plus the optional Cython kernels.

``kernels/`` installs as the subpackage ``fastcnn.kernels`` so that nothing
called ``kernels`` lands at the top of site-packages. The Cython extension is
optional: on a machine without a C compiler (or without Cython) ``pip install .``
still succeeds, and the ``cython`` backend reports itself unavailable with the
reason. The extension is compiled for the CPU of the machine that builds it
(``-march=native``); FASTCNN_PORTABLE_BUILD=1 builds one for any CPU of the architecture
(a wheel), FASTCNN_OPENMP=0 a serial one.
"""

import os
import sys
import tempfile

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

PACKAGE_DIR = {"fastcnn": "fastcnn", "fastcnn.kernels": "kernels"}
PACKAGES = [
    prefix + sub
    for package, folder in PACKAGE_DIR.items()
    for prefix, sub in [(package, "")] + [(package + ".", p) for p in find_packages(folder)]
]

CYTHON_KERNELS = Extension("fastcnn.kernels.cython._kernels", ["kernels/cython/_kernels.pyx"])

OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


class OptionalBuildExt(build_ext):
    """Builds the Cython kernels with OpenMP where the compiler has it, serial where it
    does not, and only warns when they cannot be built at all (no compiler, no Cython)."""

    def run(self):
        try:
            from Cython.Build import cythonize

            for ext, cythonized in zip(self.extensions, cythonize(self.extensions, language_level=3)):
                ext.sources = cythonized.sources
            super().run()
        except Exception as exc:  # an optional extension: never fail the install
            self.extensions[:] = []
            print(f"WARNING: the Cython kernels were not built ({type(exc).__name__}: {exc}); "
                  "fastcnn installs without its 'cython' backend.", file=sys.stderr)

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        openmp = self._openmp_flag(msvc)
        native = self._native_flags(msvc)
        print(f"building the Cython kernels {'with OpenMP' if openmp else 'serial (no OpenMP)'}"
              f", {' '.join(native) if native else 'portable ISA'}", file=sys.stderr)
        # no errno or FP-trap semantics to keep (NaN and inf still propagate): lets the
        # compiler vectorise sqrt and turn compares (relu, dropout) into branch-free selects
        optimise = ["/O2"] if msvc else ["-O3", "-fno-math-errno", "-fno-trapping-math"]
        optimise += native
        if not openmp and not msvc and self._compiles("-fopenmp-simd"):
            optimise.append("-fopenmp-simd")  # the sums' "omp simd" pragmas, without threads
        for ext in self.extensions:
            ext.extra_compile_args += optimise + openmp
            ext.extra_link_args += openmp
        super().build_extensions()

    def _native_flags(self, msvc):
        """Flags that compile for this machine's CPU: the element-wise kernels (tanh, GELU,
        ELU, ...) are vector arithmetic, 2-4x faster with the CPU's widest vectors (AVX-512
        on a server, where GCC otherwise stops at 256 bits). pip builds the extension on
        the machine that installs it (CI included), so that is the CPU it runs on; a build
        for other machines (a wheel, a shared cluster image) sets FASTCNN_PORTABLE_BUILD=1,
        and the module then needs only the compiler's default ISA (the AVX-512 GEMM still
        checks the CPU at run time)."""
        if msvc or os.environ.get("FASTCNN_PORTABLE_BUILD", "0") not in ("", "0"):
            return []
        flags = []
        # -ffp-contract=off: no a*b+c fused into one rounding where -march brings FMA (a
        # softmax gradient that cancels moved off the reference); the polynomials of exp,
        # tanh and erf fuse where they say so (FASTCNN_MADD in _kernels.pyx)
        for flag in ("-march=native", "-mprefer-vector-width=512", "-ffp-contract=off"):
            if self._compiles(flag):
                flags.append(flag)
        return flags

    def _compiles(self, flag):
        """True when this compiler accepts ``flag`` (not every compiler or CPU has it)."""
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "flag_probe.c")
            with open(source, "w") as f:
                f.write("int main(void) { return 0; }\n")
            try:
                self.compiler.compile([source], output_dir=tmp, extra_postargs=[flag, "-Werror"])
            except Exception:
                return False
        return True

    def _openmp_flag(self, msvc):
        """[flag] when this compiler compiles and links an OpenMP program, else []
        (FASTCNN_OPENMP=0 forces a serial build)."""
        if os.environ.get("FASTCNN_OPENMP", "1") == "0":
            return []
        flag = "/openmp" if msvc else "-fopenmp"
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "openmp_probe.c")
            with open(source, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objects = self.compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
                self.compiler.link_executable(objects, os.path.join(tmp, "openmp_probe"),
                                              extra_postargs=[flag])
            except Exception:
                return []
        return [flag]


setup(
    package_dir=PACKAGE_DIR,
    packages=PACKAGES,
    ext_modules=[CYTHON_KERNELS],
    cmdclass={"build_ext": OptionalBuildExt},
)
