# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=True
"""Kernels of the ``cython`` backend, compiled ahead of time.

Only loops live here: ``fastcnn.kernels.cython_backend`` maps the contract
onto these functions, ``fastcnn.functional`` checks arguments and allocates
every output (shapes as in :mod:`fastcnn.kernels.contract`). The big GEMMs run
inside the parallel loops, each thread multiplying its own sample or piece: float32
on the module's own AVX-512 sgemm where the CPU has AVX-512F (``fastcnn_sgemm``,
compiled for AVX-512 function by function, so the module still loads anywhere), the
rest on single-threaded BLAS (SciPy's ``cython_blas`` sgemm/dgemm, handed over at run
time by :func:`use_blas`, so building needs no SciPy). Every kernel takes float32 or float64 arrays (the fused
type ``real``), releases the GIL and, in an OpenMP build, splits its outer loop
over ``_num_threads`` threads once the work is big enough to pay for them.
"""

import os

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport erf, exp, log, sqrt, sqrtf, tanh
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset

ctypedef fused real:
    float
    double

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <math.h>

    /* p * x + c in one rounding where the CPU has FMA (the build sets -ffp-contract=off,
       so that only the polynomials of exp, tanh and erf fuse), else two. GCC does not
       vectorise a loop that calls these in only one branch: compute, then select. */
    #ifdef __FMA__
    #define FASTCNN_MADD(p, x, c) fmaf(p, x, c)
    #else
    #define FASTCNN_MADD(p, x, c) ((p) * (x) + (c))
    #endif

    /* exp of a float in plain arithmetic, so that loops calling it vectorise (a libm
       call per element costs an order of magnitude more). Cephes' expf: x = n ln2 + r
       with |r| <= ln2 / 2 (n rounded by the 1.5 * 2**23 trick: no rounding instruction
       before SSE4.1), a degree-7 polynomial for exp(r), times 2**n built from its bits.
       Within 3 ulp of exp; 0 below -87.34 (not a subnormal), inf above 88.72, NaN for
       NaN. Needs IEEE arithmetic as written: never build this file with -ffast-math. */
    static inline float fastcnn_expf(float x) {
        const float hi = 88.72283905206835f, lo = -87.3365447505531f;
        float c = x > lo ? x : lo;  /* NaN -> lo, so n stays an integer */
        c = c < hi ? c : hi;
        float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
        float r = c - n * 0.693359375f - n * -2.12194440e-4f;
        float p = 1.9875691500e-4f;
        p = FASTCNN_MADD(p, r, 1.3981999507e-3f);
        p = FASTCNN_MADD(p, r, 8.3334519073e-3f);
        p = FASTCNN_MADD(p, r, 4.1665795894e-2f);
        p = FASTCNN_MADD(p, r, 1.6666665459e-1f);
        p = FASTCNN_MADD(p, r, 5.0000001201e-1f);
        p = p * r * r + r + 1.0f;
        /* 2**n as 2**(n >> 1) * 2**(n - (n >> 1)): each factor normal for n in [-126, 128] */
        int32_t whole = (int32_t)n, half = whole >> 1;
        int32_t bits_a = (half + 127) << 23, bits_b = (whole - half + 127) << 23;
        float scale_a, scale_b;
        memcpy(&scale_a, &bits_a, sizeof scale_a);
        memcpy(&scale_b, &bits_b, sizeof scale_b);
        float v = p * scale_a * scale_b;
        v = x < lo ? 0.0f : v;
        v = x > hi ? INFINITY : v;
        return x == x ? v : x;
    }

    /* tanh and erf of a float as rational functions p(x) / q(x) on a clamped x (the
       minimax approximations Eigen uses for float32): a dozen multiply-adds and one
       division, no exp, so the loops vectorise and beat libm's tanhf by ~10x. tanh is
       within 3e-7 relative of tanh (+-1 from 7.9; subnormal x lose relative, not absolute,
       accuracy); erf within
       5e-7 absolute of erf (+-1 beyond 4). NaN in, NaN out. */
    static inline float fastcnn_tanhf(float a) {
        const float c = 7.90531110763549805f;
        float x = a;  /* beyond +-c the result is selected below (inf / inf there: unread) */
        float x2 = x * x;
        float p = -2.76076847742355e-16f;
        p = FASTCNN_MADD(p, x2, 2.00018790482477e-13f);
        p = FASTCNN_MADD(p, x2, -8.60467152213735e-11f);
        p = FASTCNN_MADD(p, x2, 5.12229709037114e-08f);
        p = FASTCNN_MADD(p, x2, 1.48572235717979e-05f);
        p = FASTCNN_MADD(p, x2, 6.37261928875436e-04f);
        p = FASTCNN_MADD(p, x2, 4.89352455891786e-03f);
        float q = 1.19825839466702e-06f;
        q = FASTCNN_MADD(q, x2, 1.18534705686654e-04f);
        q = FASTCNN_MADD(q, x2, 2.26843463243900e-03f);
        q = FASTCNN_MADD(q, x2, 4.89352518554385e-03f);
        float t = p * x / q;
        t = a >= c ? 1.0f : t;  /* exactly +-1 beyond c: GELU's slope takes 1 - t*t */
        t = a <= -c ? -1.0f : t;
        return t;
    }

    static inline float fastcnn_erff(float a) {
        float x = a > 4.0f ? 4.0f : a;
        x = x < -4.0f ? -4.0f : x;
        float x2 = x * x;
        float p = -2.72614225801306e-10f;
        p = FASTCNN_MADD(p, x2, 2.77068142495902e-08f);
        p = FASTCNN_MADD(p, x2, -2.10102402082508e-06f);
        p = FASTCNN_MADD(p, x2, -5.69250639462346e-05f);
        p = FASTCNN_MADD(p, x2, -7.34990630326855e-04f);
        p = FASTCNN_MADD(p, x2, -2.95459980854025e-03f);
        p = FASTCNN_MADD(p, x2, -1.60960333262415e-02f);
        float q = -1.45660718464996e-05f;
        q = FASTCNN_MADD(q, x2, -2.13374055278905e-04f);
        q = FASTCNN_MADD(q, x2, -1.68282697438203e-03f);
        q = FASTCNN_MADD(q, x2, -7.37332916720468e-03f);
        q = FASTCNN_MADD(q, x2, -1.42647390514189e-02f);
        return p * x / q;  /* NaN passes the clamps */
    }

    /* Sums over a row in the vector lanes: "omp simd reduction" lets the compiler keep
       one partial sum per lane (a loop of += is otherwise one chain of dependent adds, and
       GCC compiles an explicit array of lane sums 5x slower). setup.py builds with
       -fopenmp or -fopenmp-simd; a compiler with neither adds in order. */
    #define FASTCNN_SUMS(name, real) \
    static inline double name##_sum(const real* v, ptrdiff_t n) { \
        real s = 0; \
        _Pragma("omp simd reduction(+:s)") \
        for (ptrdiff_t i = 0; i < n; i++) s += v[i]; \
        return s; \
    } \
    static inline double name##_centred_squares(const real* v, ptrdiff_t n, real mean) { \
        real s = 0; \
        _Pragma("omp simd reduction(+:s)") \
        for (ptrdiff_t i = 0; i < n; i++) { real d = v[i] - mean; s += d * d; } \
        return s; \
    } \
    static inline double name##_dot(const real* a, const real* b, ptrdiff_t n, double* sum_a) { \
        real s = 0, p = 0; \
        _Pragma("omp simd reduction(+:s, p)") \
        for (ptrdiff_t i = 0; i < n; i++) { s += a[i]; p += a[i] * b[i]; } \
        *sum_a += s; \
        return p; \
    }
    /* d/dx x * Phi(x) = Phi(x) + x * phi(x), from one exp: the normal tail as Abramowitz &
       Stegun 7.1.26 (absolute error below 1.5e-7) times that exp */
    static inline float fastcnn_gelu_slopef(float v) {
        float e = fastcnn_expf(-0.5f * v * v);
        float t = 1.0f / (1.0f + 0.3275911f * 0.7071067811865476f * fabsf(v));
        float p = 1.061405429f;
        p = FASTCNN_MADD(p, t, -1.453152027f);
        p = FASTCNN_MADD(p, t, 1.421413741f);
        p = FASTCNN_MADD(p, t, -0.284496736f);
        p = FASTCNN_MADD(p, t, 0.254829592f);
        float tail = 0.5f * p * t * e;
        float cdf = v >= 0 ? 1.0f - tail : tail;
        return FASTCNN_MADD(v * e, 0.3989422804014327f, cdf);
    }

    FASTCNN_SUMS(fastcnn_float, float)
    FASTCNN_SUMS(fastcnn_double, double)

    /* BatchNorm's inference pass: xhat = (x - mean) * inverse, out = xhat * scale + shift,
       xhat written around the caches (AVX-512 streaming stores) where the build has
       AVX-512: only a backward pass through an inference pass reads it, and a second
       cached output costs as much again as the first. */
    #if defined(__AVX512F__)
    #include <immintrin.h>
    #endif
    static inline void fastcnn_float_normalise_streaming(const float* x, float* xhat, float* out,
            ptrdiff_t first, ptrdiff_t end, ptrdiff_t channels, ptrdiff_t n,
            const float* mean, const float* inverse, const float* scale, const float* shift) {
        /* planes [first, end) of (N*C, n) views; one fence after them all */
        for (ptrdiff_t plane = first; plane < end; plane++) {
            ptrdiff_t c = plane % channels, r = 0;
            const float* src = x + plane * n;
            float* h_row = xhat + plane * n;
            float* o_row = out + plane * n;
            float m = mean[c], v = inverse[c], a = scale[c], b = shift[c];
    #if defined(__AVX512F__)
            for (; r < n && ((uintptr_t)(h_row + r) & 63) != 0; r++) {
                float h = (src[r] - m) * v;
                h_row[r] = h;
                o_row[r] = h * a + b;
            }
            const __m512 mv = _mm512_set1_ps(m), vv = _mm512_set1_ps(v);
            const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b);
            for (; r + 16 <= n; r += 16) {
                __m512 h = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(src + r), mv), vv);
                _mm512_stream_ps(h_row + r, h);
                _mm512_storeu_ps(o_row + r, _mm512_add_ps(_mm512_mul_ps(h, av), bv));
            }
    #endif
            for (; r < n; r++) {
                float h = (src[r] - m) * v;
                h_row[r] = h;
                o_row[r] = h * a + b;
            }
        }
    #if defined(__AVX512F__)
        _mm_sfence();
    #endif
    }
    """
    float fastcnn_expf(float x) noexcept nogil
    float fastcnn_tanhf(float x) noexcept nogil
    float fastcnn_erff(float x) noexcept nogil
    float fastcnn_gelu_slopef(float x) noexcept nogil
    double fastcnn_float_sum(const float* v, Py_ssize_t n) noexcept nogil
    double fastcnn_double_sum(const double* v, Py_ssize_t n) noexcept nogil
    double fastcnn_float_centred_squares(const float* v, Py_ssize_t n, float mean) noexcept nogil
    double fastcnn_double_centred_squares(const double* v, Py_ssize_t n, double mean) noexcept nogil
    double fastcnn_float_dot(const float* a, const float* b, Py_ssize_t n, double* sum_a) noexcept nogil
    double fastcnn_double_dot(const double* a, const double* b, Py_ssize_t n, double* sum_a) noexcept nogil
    void fastcnn_float_normalise_streaming(const float* x, float* xhat, float* out,
                                           Py_ssize_t first, Py_ssize_t end, Py_ssize_t channels,
                                           Py_ssize_t n, const float* mean, const float* inverse,
                                           const float* scale, const float* shift) noexcept nogil

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FASTCNN_OPENMP 1
    #else
    #define FASTCNN_OPENMP 0
    #endif
    """
    int FASTCNN_OPENMP

OPENMP = bool(FASTCNN_OPENMP)
"""True when compiled with OpenMP (parallel kernels), False for a serial build."""

# Activation codes (cython_backend maps the contract's names onto them).
cdef enum:
    ACT_NONE = 0
    ACT_RELU = 1
    ACT_SIGMOID = 2

cdef int _num_threads = 1
# Below this many elements a loop runs on one thread: waking the team costs more.
cdef Py_ssize_t PARALLEL_MIN = 32768


def set_num_threads(int n):
    """Threads every parallel loop uses from now on (n >= 1; ignored in a serial build)."""
    global _num_threads
    _num_threads = n


def get_num_threads():
    """Threads the parallel loops use: 1 in a serial build."""
    return _num_threads if FASTCNN_OPENMP else 1


def set_parallel_min(Py_ssize_t elements):
    """Loops over fewer elements run on one thread; returns the previous value
    (tests set 0 to thread every loop, however small)."""
    global PARALLEL_MIN
    previous, PARALLEL_MIN = PARALLEL_MIN, elements
    return previous


cdef extern from *:
    """
    #include <stdlib.h>
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    #include <immintrin.h>
    #define FASTCNN_X86 1
    #define FASTCNN_AVX512 __attribute__((target("avx512f,fma")))
    #else
    #define FASTCNN_X86 0
    #define FASTCNN_AVX512
    #endif

    /* An AVX-512 sgemm of our own, as in the numba backend's gemm.py (BLIS scheme):
       A packed in panels of MR rows, k-major (or its rows read in place when whole
       panels of them are there); B in panels of NR columns; each MR x NR
       tile of C in 16 zmm accumulators, one FMA per (broadcast of A, 16 columns of B)
       and k; K in slices of KC. Compiled for AVX-512 function by function (the rest of
       the module stays portable) and used only where the CPU has AVX-512F. */
    enum { FC_MR = 8, FC_NR = 32, FC_KC = 256 };

    static int fastcnn_gemm_available(void) {
    #if FASTCNN_X86
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
    #else
        return 0;
    #endif
    }

    #if FASTCNN_X86
    /* c[i*ldc + j] (MR x NR) = (keep ? c : 0) + sum_k a[i*a_row + k*a_step] * b[k*NR + j]:
       A packed (a_row 1, a_step MR) or read in place (a_row its row stride, a_step 1) */
    FASTCNN_AVX512 static void fc_tile(long kc, const float* a, long a_row, long a_step,
                                       const float* b, float* c, long ldc, int keep) {
        __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (keep) {
            c00 = _mm512_loadu_ps(c + 0 * ldc); c01 = _mm512_loadu_ps(c + 0 * ldc + 16);
            c10 = _mm512_loadu_ps(c + 1 * ldc); c11 = _mm512_loadu_ps(c + 1 * ldc + 16);
            c20 = _mm512_loadu_ps(c + 2 * ldc); c21 = _mm512_loadu_ps(c + 2 * ldc + 16);
            c30 = _mm512_loadu_ps(c + 3 * ldc); c31 = _mm512_loadu_ps(c + 3 * ldc + 16);
            c40 = _mm512_loadu_ps(c + 4 * ldc); c41 = _mm512_loadu_ps(c + 4 * ldc + 16);
            c50 = _mm512_loadu_ps(c + 5 * ldc); c51 = _mm512_loadu_ps(c + 5 * ldc + 16);
            c60 = _mm512_loadu_ps(c + 6 * ldc); c61 = _mm512_loadu_ps(c + 6 * ldc + 16);
            c70 = _mm512_loadu_ps(c + 7 * ldc); c71 = _mm512_loadu_ps(c + 7 * ldc + 16);
        } else {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = _mm512_setzero_ps();
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = _mm512_setzero_ps();
        }
        const float *a0 = a, *a1 = a + a_row, *a2 = a + 2 * a_row, *a3 = a + 3 * a_row;
        const float *a4 = a + 4 * a_row, *a5 = a + 5 * a_row, *a6 = a + 6 * a_row;
        const float *a7 = a + 7 * a_row;
        for (long k = 0, at = 0; k < kc; k++, at += a_step, b += FC_NR) {
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), s;
            s = _mm512_set1_ps(a0[at]); c00 = _mm512_fmadd_ps(s, b0, c00); c01 = _mm512_fmadd_ps(s, b1, c01);
            s = _mm512_set1_ps(a1[at]); c10 = _mm512_fmadd_ps(s, b0, c10); c11 = _mm512_fmadd_ps(s, b1, c11);
            s = _mm512_set1_ps(a2[at]); c20 = _mm512_fmadd_ps(s, b0, c20); c21 = _mm512_fmadd_ps(s, b1, c21);
            s = _mm512_set1_ps(a3[at]); c30 = _mm512_fmadd_ps(s, b0, c30); c31 = _mm512_fmadd_ps(s, b1, c31);
            s = _mm512_set1_ps(a4[at]); c40 = _mm512_fmadd_ps(s, b0, c40); c41 = _mm512_fmadd_ps(s, b1, c41);
            s = _mm512_set1_ps(a5[at]); c50 = _mm512_fmadd_ps(s, b0, c50); c51 = _mm512_fmadd_ps(s, b1, c51);
            s = _mm512_set1_ps(a6[at]); c60 = _mm512_fmadd_ps(s, b0, c60); c61 = _mm512_fmadd_ps(s, b1, c61);
            s = _mm512_set1_ps(a7[at]); c70 = _mm512_fmadd_ps(s, b0, c70); c71 = _mm512_fmadd_ps(s, b1, c71);
        }
        _mm512_storeu_ps(c + 0 * ldc, c00); _mm512_storeu_ps(c + 0 * ldc + 16, c01);
        _mm512_storeu_ps(c + 1 * ldc, c10); _mm512_storeu_ps(c + 1 * ldc + 16, c11);
        _mm512_storeu_ps(c + 2 * ldc, c20); _mm512_storeu_ps(c + 2 * ldc + 16, c21);
        _mm512_storeu_ps(c + 3 * ldc, c30); _mm512_storeu_ps(c + 3 * ldc + 16, c31);
        _mm512_storeu_ps(c + 4 * ldc, c40); _mm512_storeu_ps(c + 4 * ldc + 16, c41);
        _mm512_storeu_ps(c + 5 * ldc, c50); _mm512_storeu_ps(c + 5 * ldc + 16, c51);
        _mm512_storeu_ps(c + 6 * ldc, c60); _mm512_storeu_ps(c + 6 * ldc + 16, c61);
        _mm512_storeu_ps(c + 7 * ldc, c70); _mm512_storeu_ps(c + 7 * ldc + 16, c71);
    }

    /* dst[(p*depth + k)*panel + i] = src[(p*panel + i)*line + k*step]: `lines` lines of
       `depth` values interleaved in panels of `panel`, zero-padded. */
    FASTCNN_AVX512 static void fc_pack(const float* src, long line, long step, long lines,
                                       long depth, long panel, float* dst) {
        for (long p = 0; p * panel < lines; p++) {
            long count = lines - p * panel < panel ? lines - p * panel : panel;
            float* out = dst + p * depth * panel;
            const float* in = src + p * panel * line;
            if (step == 1) {  /* each line contiguous: read along it, FC_KC values at a
                                 time, so that the panel rows written stay in L1 */
                for (long k0 = 0; k0 < depth; k0 += FC_KC) {
                    long end = depth - k0 < FC_KC ? depth : k0 + FC_KC;
                    for (long i = 0; i < count; i++)
                        for (long k = k0; k < end; k++) out[k * panel + i] = in[i * line + k];
                }
            } else {          /* lines side by side (line == 1 reads contiguously) */
                for (long k = 0; k < depth; k++)
                    for (long i = 0; i < count; i++) out[k * panel + i] = in[i * line + k * step];
            }
            for (long i = count; i < panel; i++)
                for (long k = 0; k < depth; k++) out[k * panel + i] = 0;
        }
    }

    /* Row-major c (m, n) = op(a) (m, k) @ op(b) (k, n) [+ c when keep]; op(a)[i, q] is
       a[i*lda + q] (a[q*lda + i] with trans_a), op(b)[q, j] is b[q*ldb + j] (b[j*ldb + q]
       with trans_b). Returns 0, or -1 when out of memory (nothing written then). */
    FASTCNN_AVX512 static int fastcnn_sgemm(int trans_a, int trans_b, long m, long n, long k,
                                            const float* a, long lda, const float* b, long ldb,
                                            int keep, float* c, long ldc) {
        long row_panels = (m + FC_MR - 1) / FC_MR, column_panels = (n + FC_NR - 1) / FC_NR;
        /* A's rows are read in place when whole panels of them are there: no packing */
        int in_place = !trans_a && m % FC_MR == 0;
        float* pa = in_place ? NULL : (float*)malloc(sizeof(float) * row_panels * FC_MR * k);
        float* pb = (float*)malloc(sizeof(float) * column_panels * FC_NR * k);
        float edge[FC_MR * FC_NR];
        if ((pa == NULL && !in_place) || pb == NULL) { free(pa); free(pb); return -1; }
        if (!in_place) fc_pack(a, trans_a ? 1 : lda, trans_a ? lda : 1, m, k, FC_MR, pa);
        fc_pack(b, trans_b ? ldb : 1, trans_b ? 1 : ldb, n, k, FC_NR, pb);
        const float* a_base = in_place ? a : pa;
        long a_row = in_place ? lda : 1, a_step = in_place ? 1 : FC_MR;
        long a_panel = in_place ? FC_MR * lda : FC_MR * k;
        for (long k0 = 0; k0 < k; k0 += FC_KC) {
            long kc = k - k0 < FC_KC ? k - k0 : FC_KC;
            int accumulate = keep || k0 > 0;
            for (long q = 0; q < column_panels; q++) {
                long width = n - q * FC_NR < FC_NR ? n - q * FC_NR : FC_NR;
                const float* bq = pb + (q * k + k0) * FC_NR;
                for (long p = 0; p < row_panels; p++) {
                    long height = m - p * FC_MR < FC_MR ? m - p * FC_MR : FC_MR;
                    const float* ap = a_base + p * a_panel + k0 * a_step;
                    float* tile = c + p * FC_MR * ldc + q * FC_NR;
                    if (width == FC_NR && height == FC_MR) {
                        fc_tile(kc, ap, a_row, a_step, bq, tile, ldc, accumulate);
                        continue;
                    }
                    fc_tile(kc, ap, a_row, a_step, bq, edge, FC_NR, 0);  /* over C's edge */
                    for (long i = 0; i < height; i++)
                        for (long j = 0; j < width; j++)
                            tile[i * ldc + j] = edge[i * FC_NR + j] +
                                                (accumulate ? tile[i * ldc + j] : 0.0f);
                }
            }
        }
        free(pa);
        free(pb);
        return 0;
    }
    #else
    static int fastcnn_sgemm(int trans_a, int trans_b, long m, long n, long k, const float* a,
                             long lda, const float* b, long ldb, int keep, float* c, long ldc) {
        return -1;
    }
    #endif
    """
    int fastcnn_gemm_available() noexcept nogil
    int fastcnn_sgemm(int trans_a, int trans_b, long m, long n, long k, const float* a, long lda,
                      const float* b, long ldb, int keep, float* c, long ldc) noexcept nogil

# ---- BLAS, called from inside the parallel loops ---------------------------------------
ctypedef void (*sgemm_t)(char* transa, char* transb, int* m, int* n, int* k, float* alpha,
                         const float* a, int* lda, const float* b, int* ldb, float* beta,
                         float* c, int* ldc) noexcept nogil
ctypedef void (*dgemm_t)(char* transa, char* transb, int* m, int* n, int* k, double* alpha,
                         const double* a, int* lda, const double* b, int* ldb, double* beta,
                         double* c, int* ldc) noexcept nogil

cdef sgemm_t _sgemm = NULL
cdef dgemm_t _dgemm = NULL


def use_blas(sgemm_capsule, dgemm_capsule):
    """Take the Fortran sgemm and dgemm from SciPy's ``cython_blas.__pyx_capi__`` capsules."""
    global _sgemm, _dgemm
    _sgemm = <sgemm_t>PyCapsule_GetPointer(sgemm_capsule, PyCapsule_GetName(sgemm_capsule))
    _dgemm = <dgemm_t>PyCapsule_GetPointer(dgemm_capsule, PyCapsule_GetName(dgemm_capsule))


cdef bint _own_gemm = fastcnn_gemm_available() and os.environ.get("FASTCNN_OWN_GEMM", "1") != "0"
cdef int OWN_GEMM_MIN = 16
"""Products with fewer rows or columns than this stay with BLAS: most of a zero-padded
8 x 32 tile would be wasted (pytorch_cnn's first weight gradient has 9 columns)."""


def own_gemm():
    """True when float32 products run on the module's own AVX-512 sgemm (the CPU has
    AVX-512F and FASTCNN_OWN_GEMM is not 0), False when they all go to BLAS."""
    return _own_gemm


def use_own_gemm(bint on):
    """Turn the own sgemm on (where the CPU has AVX-512F) or off; returns the previous
    setting. For tests and benchmarks."""
    global _own_gemm
    previous, _own_gemm = _own_gemm, on and fastcnn_gemm_available()
    return previous


def gemm_float32(const float[:, ::1] a, const float[:, ::1] b, float[:, ::1] c, bint trans_a,
                 bint trans_b, bint keep):
    """c (M, N) = op(a) @ op(b) [+ c when keep], through the kernels' own GEMM dispatch
    (the micro-kernel or BLAS): what the tests hold to NumPy."""
    cdef int m = c.shape[0], n = c.shape[1], k = a.shape[0] if trans_a else a.shape[1]
    if (b.shape[1] if trans_b else b.shape[0]) != k:
        raise ValueError("gemm_float32: a and b do not chain")
    _gemm(trans_a, trans_b, m, n, k, &a[0, 0], a.shape[1], &b[0, 0], b.shape[1],
          1 if keep else 0, &c[0, 0], n)


def has_blas():
    """True once use_blas() gave the kernels a GEMM."""
    return _sgemm != NULL and _dgemm != NULL


cdef inline void _gemm(bint trans_a, bint trans_b, int m, int n, int k, const real* a, int lda,
                       const real* b, int ldb, real beta, real* c, int ldc) noexcept nogil:
    """Row-major c (m, n) = op(a) (m, k) @ op(b) (k, n) + beta * c, op = transpose when asked;
    lda/ldb/ldc are row strides. float32 products of at least OWN_GEMM_MIN rows and columns
    run on fastcnn_sgemm where the CPU has AVX-512F; the rest on BLAS, which, being
    column-major, computes c.T = op(b).T @ op(a).T."""
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef float one_f = 1, beta_f = <float>beta
    cdef double one_d = 1, beta_d = <double>beta
    if m == 0 or n == 0:
        return
    if real is float and _own_gemm and m >= OWN_GEMM_MIN and n >= OWN_GEMM_MIN and \
            (beta == 0 or beta == 1):
        if fastcnn_sgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta == 1, c, ldc) == 0:
            return
    if real is float:
        _sgemm(&ta, &tb, &n, &m, &k, &one_f, b, &ldb, a, &lda, &beta_f, c, &ldc)
    else:
        _dgemm(&ta, &tb, &n, &m, &k, &one_d, b, &ldb, a, &lda, &beta_d, c, &ldc)


# ---- scalar helpers -------------------------------------------------------------
cdef inline real _exp(real v) noexcept nogil:
    return fastcnn_expf(v) if real is float else exp(v)


cdef inline real _sqrt(real v) noexcept nogil:
    return sqrtf(v) if real is float else sqrt(v)


cdef inline real _sigmoid(real v) noexcept nogil:
    # exp of a non-positive number only: no overflow for large |v|; one exp, no branch
    cdef real e = _exp(-v if v >= 0 else v)
    return <real>1 / (<real>1 + e) if v >= 0 else e / (<real>1 + e)


cdef inline real _activate(real v, int act) noexcept nogil:
    if act == ACT_RELU:
        return 0 if v < 0 else v
    if act == ACT_SIGMOID:
        return _sigmoid(v)
    return v


cdef inline void _bias_activate(real* dst, const real* src, Py_ssize_t count, real shift,
                                int act) noexcept nogil:
    """dst[:count] = act(src[:count] + shift) (dst may be src). One loop per activation, the
    choice made outside: a switch inside the loop (with sigmoid's exp inlined into it) keeps
    the compiler from vectorising ReLU (pytorch_cnn's conv epilogues ran 2x slower)."""
    cdef Py_ssize_t i
    if act == ACT_RELU:
        for i in range(count):
            dst[i] = _activate(src[i] + shift, ACT_RELU)
    elif act == ACT_SIGMOID:
        for i in range(count):
            dst[i] = _sigmoid(src[i] + shift)
    else:
        for i in range(count):
            dst[i] = src[i] + shift


cdef inline real _activation_grad(real dout, real out, int act) noexcept nogil:
    """dout times the activation's derivative, written in terms of its output."""
    if act == ACT_RELU:
        return dout * (out > 0)
    if act == ACT_SIGMOID:
        return dout * (out * (<real>1 - out))
    return dout


# Window positions o whose pixel o*stride + offset lies inside [0, size) form a range
# [_first_inside, _end_inside). Returned, not written through pointers: inside a prange
# only variables that are assigned become thread-private.
cdef inline Py_ssize_t _end_inside(Py_ssize_t offset, Py_ssize_t size, Py_ssize_t stride,
                                   Py_ssize_t count) noexcept nogil:
    if size - 1 - offset < 0:
        return 0
    return min(count, (size - 1 - offset) // stride + 1)


cdef inline Py_ssize_t _first_inside(Py_ssize_t offset, Py_ssize_t stride,
                                     Py_ssize_t end) noexcept nogil:
    return min(end, 0 if offset >= 0 else (stride - 1 - offset) // stride)


cdef inline Py_ssize_t _out_size(Py_ssize_t size, Py_ssize_t kernel, Py_ssize_t stride,
                                 Py_ssize_t padding) noexcept nogil:
    """Output size of a window along one axis (contract.conv_output_size)."""
    return (size + 2 * padding - kernel) // stride + 1


cdef inline void _zero(real* dst, Py_ssize_t count) noexcept nogil:
    if count > 0:
        memset(dst, 0, count * sizeof(real))


cdef inline void _copy_strided(real* dst, const real* src, Py_ssize_t count,
                               Py_ssize_t stride) noexcept nogil:
    """dst[k] = src[k * stride] for k < count (stride 1 apart: a plain, vectorised copy)."""
    cdef Py_ssize_t k
    if stride == 1:
        for k in range(count):
            dst[k] = src[k]
    else:
        for k in range(count):
            dst[k] = src[k * stride]


cdef inline void _add_strided(real* dst, const real* src, Py_ssize_t count,
                              Py_ssize_t stride) noexcept nogil:
    """dst[k * stride] += src[k] for k < count."""
    cdef Py_ssize_t k
    if stride == 1:
        for k in range(count):
            dst[k] += src[k]
    else:
        for k in range(count):
            dst[k * stride] += src[k]


cdef inline double _sum(const real* values, Py_ssize_t count) noexcept nogil:
    """Sum in the vector lanes (fastcnn_float_sum), added up in float64."""
    if real is float:
        return fastcnn_float_sum(values, count)
    return fastcnn_double_sum(values, count)


cdef inline double _strided_sum(const double* values, Py_ssize_t count,
                                Py_ssize_t stride) noexcept nogil:
    """values[0] + values[stride] + ... (count terms), in order: fixed-chunk partial sums."""
    cdef double total = 0
    cdef Py_ssize_t g
    for g in range(count):
        total = total + values[g * stride]
    return total


cdef inline bint _beats(real value, real best) noexcept nogil:
    """True when ``value`` replaces ``best`` in an argmax scan: larger, or the first NaN
    (NumPy's argmax lets the first NaN win)."""
    return value > best or (value != value and best == best)


cdef inline Py_ssize_t _count_nan(const real* values, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t k, nans = 0
    for k in range(count):
        nans += values[k] != values[k]
    return nans


cdef inline Py_ssize_t _window_argmax(const real* plane, Py_ssize_t width, Py_ssize_t y0,
                                      Py_ssize_t x0, Py_ssize_t kernel, bint nan_aware) noexcept nogil:
    """Flat index y*W + x of the first maximum of the kernel x kernel window at (y0, x0),
    scanned row by row; with nan_aware, of its first NaN if it has one."""
    cdef Py_ssize_t i, j, at, best_at = y0 * width + x0
    cdef real best = plane[best_at]
    for i in range(kernel):
        for j in range(kernel):
            at = (y0 + i) * width + x0 + j
            if (_beats(plane[at], best) if nan_aware else plane[at] > best):
                best = plane[at]
                best_at = at
    return best_at


cdef inline void _max2x2_row(const real* plane, Py_ssize_t width, Py_ssize_t oy,
                             Py_ssize_t out_w, real* out, int* argmax) noexcept nogil:
    """Output row oy of a 2x2, stride-2 max pool of a NaN-free plane: out[ox] and the flat
    index of its window's first maximum (the general loop's answer), in one pass over the
    two input rows whose loop the compiler can vectorise."""
    cdef const real* top = plane + 2 * oy * width
    cdef const real* low = top + width
    cdef Py_ssize_t ox
    cdef int at, base = <int>(2 * oy * width)
    cdef real best
    for ox in range(out_w):
        best = top[2 * ox]
        at = base + <int>(2 * ox)
        if top[2 * ox + 1] > best:
            best = top[2 * ox + 1]
            at = base + <int>(2 * ox + 1)
        if low[2 * ox] > best:
            best = low[2 * ox]
            at = base + <int>(width + 2 * ox)
        if low[2 * ox + 1] > best:
            best = low[2 * ox + 1]
            at = base + <int>(width + 2 * ox + 1)
        out[ox] = best
        argmax[ox] = at


cdef inline Py_ssize_t _row_argmax(const real[:, ::1] a, Py_ssize_t row) noexcept nogil:
    """Column of the first maximum of a[row]."""
    cdef Py_ssize_t j, best = 0
    for j in range(1, a.shape[1]):
        if _beats(a[row, j], a[row, best]):
            best = j
    return best


# ---- convolution and pooling: one (H, W) plane per (sample, channel) -----------------
# The backend passes x (N, C, H, W) as planes (N*C, H, W) and cols (N, C*KH*KW, P) as
# (N*C, KH*KW, P): the same memory, so each kernel loops over independent planes.
cdef inline (Py_ssize_t, Py_ssize_t) _inside(Py_ssize_t offset, Py_ssize_t size,
                                            Py_ssize_t stride, Py_ssize_t out_size) noexcept nogil:
    """[lo, hi) = [_first_inside, _end_inside): the window positions that read the image."""
    cdef Py_ssize_t end = _end_inside(offset, size, stride, out_size)
    return _first_inside(offset, stride, end), end


cdef inline void _im2col_plane(const real* x, Py_ssize_t height, Py_ssize_t width,
                               Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t stride,
                               Py_ssize_t padding, Py_ssize_t out_h, Py_ssize_t out_w,
                               real* cols, bint runs) noexcept nogil:
    """One plane x (H, W) -> its rows cols (KH*KW, OH*OW); padded pixels read as 0. With
    ``runs``, at stride 1 with OW == W, the valid rows of each row (i, j) are the plane
    shifted by a constant: one contiguous copy, then the columns that wrapped around a row
    edge zeroed (for a sample's columns multiplied next, while in cache; see numba's conv)."""
    cdef Py_ssize_t i, j, oy, y_lo, y_hi, x_lo, x_hi
    cdef real* row
    for i in range(kernel_h):
        y_lo, y_hi = _inside(i - padding, height, stride, out_h)
        for j in range(kernel_w):
            x_lo, x_hi = _inside(j - padding, width, stride, out_w)
            row = cols + (i * kernel_w + j) * out_h * out_w
            _zero(row, y_lo * out_w)  # window rows above the image
            if runs and stride == 1 and out_w == width and y_lo < y_hi and x_lo < x_hi:
                _copy_strided(row + y_lo * width + x_lo,
                              x + (y_lo + i - padding) * width + x_lo + j - padding,
                              (y_hi - 1 - y_lo) * width + x_hi - x_lo, 1)
                for oy in range(y_lo, y_hi):
                    _zero(row + oy * width, x_lo)
                    _zero(row + oy * width + x_hi, width - x_hi)
            else:
                for oy in range(y_lo, y_hi):
                    _zero(row + oy * out_w, x_lo)
                    _copy_strided(row + oy * out_w + x_lo,
                                  x + (oy * stride + i - padding) * width + x_lo * stride + j - padding,
                                  x_hi - x_lo, stride)
                    _zero(row + oy * out_w + x_hi, out_w - x_hi)
            _zero(row + y_hi * out_w, (out_h - y_hi) * out_w)  # and below it


cdef inline void _col2im_plane(real* cols, Py_ssize_t height, Py_ssize_t width,
                               Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t stride,
                               Py_ssize_t padding, Py_ssize_t out_h, Py_ssize_t out_w,
                               real* dx, bint runs) noexcept nogil:
    """One plane's rows cols (KH*KW, OH*OW) -> dx (H, W), summing overlapping windows. With
    ``runs`` (cols is scratch the caller lets us overwrite), at stride 1 with OW == W, the
    padding columns' entries are zeroed and each row (i, j) is added as one contiguous run;
    without it cols is only read."""
    cdef Py_ssize_t i, j, oy, y_lo, y_hi, x_lo, x_hi
    cdef real* row
    _zero(dx, height * width)
    for i in range(kernel_h):
        y_lo, y_hi = _inside(i - padding, height, stride, out_h)
        for j in range(kernel_w):
            x_lo, x_hi = _inside(j - padding, width, stride, out_w)
            row = cols + (i * kernel_w + j) * out_h * out_w
            if runs and stride == 1 and out_w == width and y_lo < y_hi and x_lo < x_hi:
                for oy in range(y_lo, y_hi):
                    _zero(row + oy * width, x_lo)
                    _zero(row + oy * width + x_hi, width - x_hi)
                _add_strided(dx + (y_lo + i - padding) * width + x_lo + j - padding,
                             row + y_lo * width + x_lo, (y_hi - 1 - y_lo) * width + x_hi - x_lo, 1)
            else:
                for oy in range(y_lo, y_hi):
                    _add_strided(dx + (oy * stride + i - padding) * width + x_lo * stride + j - padding,
                                 row + oy * out_w + x_lo, x_hi - x_lo, stride)


def im2col(const real[:, :, ::1] x, Py_ssize_t kernel_h, Py_ssize_t kernel_w,
           Py_ssize_t stride, Py_ssize_t padding, real[:, :, ::1] cols):
    """x planes (B, H, W) -> cols (B, KH*KW, OH*OW); padded pixels read as 0."""
    cdef Py_ssize_t height = x.shape[1], width = x.shape[2]
    cdef Py_ssize_t out_w = _out_size(width, kernel_w, stride, padding)
    cdef Py_ssize_t out_h = _out_size(height, kernel_h, stride, padding)
    cdef Py_ssize_t plane
    for plane in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=cols.shape[0] * cols.shape[1] * cols.shape[2] > PARALLEL_MIN):
        _im2col_plane(&x[plane, 0, 0], height, width, kernel_h, kernel_w, stride, padding,
                      out_h, out_w, &cols[plane, 0, 0], False)


def col2im(const real[:, :, ::1] cols, Py_ssize_t kernel_h, Py_ssize_t kernel_w,
           Py_ssize_t stride, Py_ssize_t padding, real[:, :, ::1] dx):
    """cols (B, KH*KW, OH*OW) -> dx planes (B, H, W), summing overlapping windows."""
    cdef Py_ssize_t height = dx.shape[1], width = dx.shape[2]
    cdef Py_ssize_t out_w = _out_size(width, kernel_w, stride, padding)
    cdef Py_ssize_t out_h = _out_size(height, kernel_h, stride, padding)
    cdef Py_ssize_t plane
    for plane in prange(dx.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=cols.shape[0] * cols.shape[1] * cols.shape[2] > PARALLEL_MIN):
        _col2im_plane(<real*>&cols[plane, 0, 0], height, width, kernel_h, kernel_w, stride,
                      padding, out_h, out_w, &dx[plane, 0, 0], False)  # cols only read


# ---- max pool of one plane (flat H*W -> flat OH*OW), shared by the pool and the fused kernels
cdef inline void _maxpool_plane(const real* src, Py_ssize_t size, Py_ssize_t width,
                                Py_ssize_t kernel, Py_ssize_t stride, Py_ssize_t out_h,
                                Py_ssize_t out_w, real* dst, int* where) noexcept nogil:
    """argmax = y*W + x of the first maximum, or of the first NaN (NumPy's argmax)."""
    cdef Py_ssize_t oy, ox, at
    # the NaN-aware compare costs four times a plain one: only planes with a NaN pay it
    cdef bint has_nan = _count_nan(src, size) > 0
    # 2x2 pools of rows of 8+ outputs (pytorch_cnn's first: 664 -> 475 us); on shorter
    # rows (its second, 7 outputs) the vectorised loop cost more than it saved
    if kernel == 2 and stride == 2 and not has_nan and out_w >= 8:
        for oy in range(out_h):
            _max2x2_row(src, width, oy, out_w, dst + oy * out_w, where + oy * out_w)
        return
    for oy in range(out_h):
        for ox in range(out_w):
            if has_nan:
                at = _window_argmax(src, width, oy * stride, ox * stride, kernel, True)
            else:
                at = _window_argmax(src, width, oy * stride, ox * stride, kernel, False)
            dst[oy * out_w + ox] = src[at]
            where[oy * out_w + ox] = <int>at


cdef inline void _maxpool_plane_backward(const real* dout, const int* argmax, Py_ssize_t count,
                                         real* dx, Py_ssize_t size) noexcept nogil:
    """dx (size,) = 0, then each of the count dout values added at its argmax."""
    cdef Py_ssize_t k
    _zero(dx, size)
    for k in range(count):
        dx[argmax[k]] += dout[k]


# ---- convolution as one parallel loop over samples --------------------------------------
# x (N, C, H, W) as planes (N*C, H, W); weight (O, K) with K = C*KH*KW; cols (N, K, P);
# out/dout (N, O, P). A thread takes a sample through im2col, its GEMMs and the epilogue.
def conv2d_forward(const real[:, :, ::1] x, const real[:, ::1] weight, const real[::1] bias,
                   int act, Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t stride,
                   Py_ssize_t padding, real[:, :, ::1] cols, real[:, :, ::1] out,
                   bint scratch=False, Py_ssize_t pool=0, real[:, :, ::1] pooled=None,
                   int[:, :, ::1] pool_argmax=None):
    """cols[n] = im2col(x[n]); out[n] (O, P) = act(weight @ cols[n] + bias), per sample.
    With ``scratch`` (inference), cols is (threads, K, P): each thread's im2col buffer,
    which stays in cache, instead of one slice per sample. With ``pool`` > 0, each plane
    of out[n] is then max pooled (window and stride ``pool``) into pooled and pool_argmax
    (N*O, PH, PW), in the same parallel loop."""
    cdef Py_ssize_t batch = out.shape[0], channels = x.shape[0] // out.shape[0]
    cdef Py_ssize_t height = x.shape[1], width = x.shape[2]
    cdef Py_ssize_t out_w = _out_size(width, kernel_w, stride, padding)
    cdef Py_ssize_t out_h = _out_size(height, kernel_h, stride, padding)
    cdef int filters = out.shape[1], size = cols.shape[1], length = cols.shape[2]
    cdef Py_ssize_t n, c, o, taps = kernel_h * kernel_w * length
    cdef bint has_bias = bias is not None
    cdef real* row
    cdef real* columns
    cdef Py_ssize_t pool_h = 0, pool_w = 0
    if scratch and cols.shape[0] < (_num_threads if FASTCNN_OPENMP else 1):
        raise ValueError("conv2d_forward: the scratch needs one (K, P) slice per thread")
    if pool > 0:
        pool_h, pool_w = pooled.shape[1], pooled.shape[2]
    # dynamic: each thread takes the next sample when it is free (numba's claims.py says
    # why: the second core of a shared VM starts late and often runs slower)
    for n in prange(batch, nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=batch * size * length > PARALLEL_MIN):
        columns = &cols[threadid() if scratch else n, 0, 0]
        for c in range(channels):
            _im2col_plane(&x[n * channels + c, 0, 0], height, width, kernel_h, kernel_w, stride,
                          padding, out_h, out_w, columns + c * taps, True)
        _gemm(False, False, filters, length, size, &weight[0, 0], size, columns, length,
              0, &out[n, 0, 0], length)
        for o in range(filters):
            row = &out[n, o, 0]
            _bias_activate(row, row, length, bias[o] if has_bias else 0, act)
            if pool > 0:
                _maxpool_plane(row, length, out_w, pool, pool, pool_h, pool_w,
                               &pooled[n * filters + o, 0, 0], &pool_argmax[n * filters + o, 0, 0])


def conv2d_backward(real[:, :, ::1] dout, const real[:, :, ::1] out, int act,
                    const real[:, ::1] weight, const real[:, :, ::1] cols, Py_ssize_t groups,
                    real[:, ::1] dweight, real[::1] dbias, real[:, :, ::1] dcols,
                    real[:, :, ::1] dx, Py_ssize_t kernel_h, Py_ssize_t kernel_w,
                    Py_ssize_t stride, Py_ssize_t padding, real[::1] partial,
                    double[::1] partial_bias, const real[:, ::1] dpooled=None,
                    const int[:, ::1] pool_argmax=None):
    """Per sample: with dpooled and pool_argmax (N*O, PH*PW), dout[n] is first the fused
    max pool's input gradient (zero, then dpooled added at each argmax); then
    dout[n] *= act'(out[n]); its weight gradient, transposed (cols[n] @
    dout[n].T, (K, O)), and bias gradient go to its group's partial sums; with dx (planes
    (N*C, H, W)) not None, weight.T @ dout[n] into the group's scratch slice of dcols and
    col2im into dx. Samples are split into ``groups`` fixed by the batch alone, summed in
    order: the result does not depend on the threads, nor on which thread (free first)
    takes which group. partial (groups*K*O,) and partial_bias (groups*O,) are workspace.
    Both loops run in one parallel region: a second one cost its own wake-up."""
    cdef Py_ssize_t batch = dout.shape[0], g, n, o, q, k, first, last, c, at
    cdef int filters = dout.shape[1], size = cols.shape[1], length = cols.shape[2]
    cdef bint has_bias = dbias is not None, has_dx = dx is not None
    cdef bint has_pool = dpooled is not None
    cdef Py_ssize_t pooled_size = dpooled.shape[1] if has_pool else 0
    cdef Py_ssize_t channels = 0, height = 0, width = 0, out_h = 0, out_w = 0
    cdef Py_ssize_t taps = kernel_h * kernel_w * length, per_group = filters * size
    cdef real* d
    cdef const real* y
    cdef double total
    if partial.shape[0] < groups * per_group or partial_bias.shape[0] < groups * filters:
        raise ValueError("conv2d_backward: the partial sums need groups*K*O and groups*O elements")
    if has_dx:
        channels, height, width = dx.shape[0] // batch, dx.shape[1], dx.shape[2]
        out_w = _out_size(width, kernel_w, stride, padding)
        out_h = _out_size(height, kernel_h, stride, padding)
    with nogil, parallel(num_threads=_num_threads,
                         use_threads_if=batch * size * length > PARALLEL_MIN):
        for g in prange(groups, schedule="dynamic"):
            first = g * batch // groups
            last = (g + 1) * batch // groups
            for o in range(filters):
                partial_bias[g * filters + o] = 0
            for n in range(first, last):
                for o in range(filters):
                    d = &dout[n, o, 0]
                    y = &out[n, o, 0]
                    if has_pool:
                        _maxpool_plane_backward(&dpooled[n * filters + o, 0],
                                                &pool_argmax[n * filters + o, 0], pooled_size,
                                                d, length)
                    for q in range(length):
                        d[q] = _activation_grad(d[q], y[q], act)
                    partial_bias[g * filters + o] += _sum(d, length)
                # transposed, (K, O): cols[n] is the first operand, read in place by fastcnn_sgemm
                _gemm(False, True, size, filters, length, &cols[n, 0, 0], length,
                      &dout[n, 0, 0], length, 0 if n == first else 1, &partial[g * per_group],
                      filters)
                if has_dx:  # into the group's first slice of dcols, its scratch: in cache
                    _gemm(True, False, size, length, filters, &weight[0, 0], size,
                          &dout[n, 0, 0], length, 0, &dcols[first, 0, 0], length)
                    for c in range(channels):
                        _col2im_plane(&dcols[first, 0, 0] + c * taps, height, width, kernel_h,
                                      kernel_w, stride, padding, out_h, out_w,
                                      &dx[n * channels + c, 0, 0], True)
        # dweight[o, k] from the partials' (k, o), k by k: o walks each group's row of the
        # partials in order (o outermost fetched every cache line once per filter: 10x slower)
        for k in prange(size, schedule="static"):
            for o in range(filters):
                at = k * filters + o
                total = partial[at]
                for g in range(1, groups):
                    total = total + partial[g * per_group + at]
                dweight[o, k] = <real>total
    if has_bias:
        for o in range(filters):
            dbias[o] = <real>_strided_sum(&partial_bias[o], groups, filters)


# ---- dense: GEMMs in pieces, one parallel loop --------------------------------------------
# x (N, F); weight (U, F); out/dout (N, U); pieces fixed by the shape (see cython_backend).
def dense_forward(const real[:, ::1] x, const real[:, ::1] weight, const real[::1] bias, int act,
                  real[:, ::1] out, Py_ssize_t pieces):
    """out[:, units] = act(x @ weight[units].T + bias[units]) in ``pieces`` blocks of units,
    each taken by the next free thread; each block packs only its units of the weight
    (pieces of rows each packed all of it)."""
    cdef int batch = x.shape[0], features = x.shape[1], units = weight.shape[0]
    cdef Py_ssize_t piece, first, last, r, u
    cdef bint has_bias = bias is not None
    for piece in prange(pieces, nogil=True, num_threads=_num_threads, schedule="dynamic"):
        first = piece * units // pieces
        last = (piece + 1) * units // pieces
        _gemm(False, True, batch, last - first, features, &x[0, 0], features, &weight[first, 0],
              features, 0, &out[0, first], units)
        for r in range(batch):
            if has_bias:
                for u in range(first, last):
                    out[r, u] = out[r, u] + bias[u]
            _bias_activate(&out[r, first], &out[r, first], last - first, 0, act)


def dense_backward(const real[:, ::1] dout, const real[:, ::1] x, const real[:, ::1] weight,
                   real[:, ::1] dx, real[:, ::1] dweight, Py_ssize_t unit_pieces,
                   Py_ssize_t pieces):
    """dweight = dout.T @ x in ``unit_pieces`` pieces of units, then, when dx is not None,
    dx = dout @ weight in ``pieces`` pieces of rows, in one parallel loop (dout already folded),
    each piece taken by the next free thread."""
    cdef int batch = x.shape[0], features = x.shape[1], units = weight.shape[0]
    cdef Py_ssize_t piece, first, last, count = unit_pieces + (pieces if dx is not None else 0)
    for piece in prange(count, nogil=True, num_threads=_num_threads, schedule="dynamic"):
        if piece < unit_pieces:
            first = piece * units // unit_pieces
            last = (piece + 1) * units // unit_pieces
            _gemm(True, False, last - first, features, batch, &dout[0, 0] + first, units,
                  &x[0, 0], features, 0, &dweight[first, 0], features)
        else:
            first = (piece - unit_pieces) * batch // pieces
            last = (piece - unit_pieces + 1) * batch // pieces
            _gemm(False, False, last - first, features, units, &dout[first, 0], units,
                  &weight[0, 0], features, 0, &dx[first, 0], features)


# ---- dense, narrow: few units, no BLAS ------------------------------------------------------
# BLAS's packing and tiles are made for wide products: for a layer of few units (say 169 -> 4
# on 60,000 rows) direct loops read x once per pass. Rows in fixed chunks of NARROW_ROWS, so
# the backward pass's partial sums do not depend on the thread count.
cdef Py_ssize_t NARROW_ROWS = 1024


cdef inline real _dot(const real* a, const real* b, Py_ssize_t n) noexcept nogil:
    """sum(a[:n] * b[:n]) in 16 running sums (the compiler vectorises those), added in order."""
    cdef real acc[16]
    cdef real total = 0
    cdef Py_ssize_t i, k, blocks = n - n % 16
    if n < 16:
        for i in range(n):
            total = total + a[i] * b[i]
        return total
    for k in range(16):
        acc[k] = 0
    for i in range(0, blocks, 16):
        for k in range(16):
            acc[k] = acc[k] + a[i + k] * b[i + k]
    for k in range(16):
        total = total + acc[k]
    for i in range(blocks, n):
        total = total + a[i] * b[i]
    return total


cdef inline void _axpy(real* y, const real* x, real a, Py_ssize_t n) noexcept nogil:
    """y[:n] += a * x[:n]."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = y[i] + a * x[i]


cdef inline void _activate_all(real* values, Py_ssize_t count, int act) noexcept nogil:
    if act != ACT_NONE:
        _bias_activate(values, values, count, 0, act)


def dense_narrow_forward(const real[:, ::1] x, const real[:, ::1] weight, const real[::1] bias,
                         int act, real[:, ::1] out):
    """out (N, U) = act(x (N, F) @ weight.T (F, U) + bias): U dot products per row."""
    cdef Py_ssize_t batch = x.shape[0], features = x.shape[1], units = weight.shape[0]
    cdef Py_ssize_t chunks = (batch + NARROW_ROWS - 1) // NARROW_ROWS, chunk, first, last, r, u
    cdef bint has_bias = bias is not None
    for chunk in prange(chunks, nogil=True, num_threads=_num_threads,
                        use_threads_if=batch * features * units > PARALLEL_MIN):
        first = chunk * NARROW_ROWS
        last = min(batch, first + NARROW_ROWS)
        for r in range(first, last):
            for u in range(units):
                out[r, u] = _dot(&x[r, 0], &weight[u, 0], features) + (bias[u] if has_bias else 0)
        _activate_all(&out[first, 0], (last - first) * units, act)


def dense_narrow_backward(real[:, ::1] dout, const real[:, ::1] out, int act,
                          const real[:, ::1] x, const real[:, ::1] weight, real[:, ::1] dx,
                          real[:, ::1] dweight, real[::1] dbias):
    """In one pass: dout (N, U) *= act'(out); dbias (U,) or None = its sum over rows;
    dweight (U, F) = dout.T @ x; dx (N, F) or None = dout @ weight. The inner loops run
    along the longer of F and U (a loop of a few iterations costs its set-up each time):
    partial sums (U, F) or (F, U), dx rows as axpys of weight rows or as dot products."""
    cdef Py_ssize_t batch = x.shape[0], features = x.shape[1], units = weight.shape[0]
    cdef Py_ssize_t chunks = (batch + NARROW_ROWS - 1) // NARROW_ROWS, chunk, first, last
    cdef Py_ssize_t r, u, c, f
    cdef bint has_dx = dx is not None, has_bias = dbias is not None
    cdef bint by_features = features > units or features >= 16
    cdef real* partial = <real*>calloc(chunks * units * features, sizeof(real))
    cdef double* partial_bias = <double*>calloc(chunks * units, sizeof(double))
    cdef real* weight_t = NULL  # (F, U), for dx's dot products when F is small
    cdef real* pw
    cdef double* pb
    cdef real d
    if not by_features:
        weight_t = <real*>malloc(units * features * sizeof(real))
    if partial == NULL or partial_bias == NULL or (not by_features and weight_t == NULL):
        free(partial)
        free(partial_bias)
        free(weight_t)
        raise MemoryError()
    if not by_features:
        for u in range(units):
            for f in range(features):
                weight_t[f * units + u] = weight[u, f]
    for chunk in prange(chunks, nogil=True, num_threads=_num_threads,
                        use_threads_if=batch * features * units > PARALLEL_MIN):
        first = chunk * NARROW_ROWS
        last = min(batch, first + NARROW_ROWS)
        pw = partial + chunk * units * features
        pb = partial_bias + chunk * units
        for r in range(first, last):
            for u in range(units):
                d = _activation_grad(dout[r, u], out[r, u], act)
                dout[r, u] = d
                pb[u] = pb[u] + d
            if by_features:
                for u in range(units):
                    _axpy(pw + u * features, &x[r, 0], dout[r, u], features)
            else:
                for f in range(features):
                    _axpy(pw + f * units, &dout[r, 0], x[r, f], units)
            if has_dx:
                if by_features:
                    memset(&dx[r, 0], 0, features * sizeof(real))
                    for u in range(units):
                        _axpy(&dx[r, 0], &weight[u, 0], dout[r, u], features)
                else:
                    for f in range(features):
                        dx[r, f] = _dot(&dout[r, 0], weight_t + f * units, units)
    for u in range(units):
        for f in range(features):
            d = 0
            for c in range(chunks):
                d = d + (partial[(c * units + u) * features + f] if by_features
                         else partial[(c * features + f) * units + u])
            dweight[u, f] = d
        if has_bias:
            dbias[u] = <real>_strided_sum(partial_bias + u, chunks, units)
    free(partial)
    free(partial_bias)
    free(weight_t)


def maxpool2d_forward(const real[:, ::1] x, Py_ssize_t width, Py_ssize_t kernel,
                      Py_ssize_t stride, real[:, :, ::1] out, int[:, :, ::1] argmax):
    """x planes (B, H*W) of width W -> out, argmax (B, OH, OW); argmax = y*W + x of the
    first maximum, or of the first NaN (NumPy's argmax)."""
    cdef Py_ssize_t plane
    for plane in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=x.shape[0] * x.shape[1] > PARALLEL_MIN):
        _maxpool_plane(&x[plane, 0], x.shape[1], width, kernel, stride, out.shape[1],
                       out.shape[2], &out[plane, 0, 0], &argmax[plane, 0, 0])


def maxpool2d_backward(const real[:, ::1] dout, const int[:, ::1] argmax, real[:, ::1] dx):
    """dout, argmax (B, OH*OW) -> dx planes (B, H*W): dout added at each window's winner."""
    cdef Py_ssize_t plane
    for plane in prange(dx.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=dx.shape[0] * dx.shape[1] > PARALLEL_MIN):
        _maxpool_plane_backward(&dout[plane, 0], &argmax[plane, 0], dout.shape[1],
                                &dx[plane, 0], dx.shape[1])


def avgpool2d_forward(const real[:, :, ::1] x, Py_ssize_t kernel, Py_ssize_t stride,
                      real[:, :, ::1] out):
    """x planes (B, H, W) -> out (B, OH, OW), the mean of each window."""
    cdef Py_ssize_t plane, oy, ox, i, j
    cdef real total
    for plane in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=x.shape[0] * x.shape[1] * x.shape[2] > PARALLEL_MIN):
        for oy in range(out.shape[1]):
            for ox in range(out.shape[2]):
                total = 0
                for i in range(kernel):
                    for j in range(kernel):
                        total = total + x[plane, oy * stride + i, ox * stride + j]
                out[plane, oy, ox] = total / (kernel * kernel)


def avgpool2d_backward(const real[:, :, ::1] dout, Py_ssize_t kernel, Py_ssize_t stride,
                       real[:, :, ::1] dx):
    """dout (B, OH, OW) -> dx planes (B, H, W): each window gets dout / kernel**2, overlaps add."""
    cdef Py_ssize_t plane, oy, ox, i, j
    cdef real share
    for plane in prange(dx.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=dx.shape[0] * dx.shape[1] * dx.shape[2] > PARALLEL_MIN):
        _zero(&dx[plane, 0, 0], dx.shape[1] * dx.shape[2])
        for oy in range(dout.shape[1]):
            for ox in range(dout.shape[2]):
                share = dout[plane, oy, ox] / (kernel * kernel)
                for i in range(kernel):
                    for j in range(kernel):
                        dx[plane, oy * stride + i, ox * stride + j] += share


# ---- bias and activation fused into convolution and dense layers ------------------------
def bias_activation_forward(real[:, :, ::1] z, const real[::1] bias, int act):
    """In place z (N, O, P) = act(z + bias[o]); bias (O,) or None."""
    cdef Py_ssize_t channels = z.shape[1], length = z.shape[2], plane
    cdef bint has_bias = bias is not None
    cdef real* row
    if act == ACT_NONE and not has_bias:
        return
    for plane in prange(z.shape[0] * channels, nogil=True, num_threads=_num_threads,
                        use_threads_if=z.shape[0] * channels * length > PARALLEL_MIN):
        row = &z[plane // channels, plane % channels, 0]
        _bias_activate(row, row, length, bias[plane % channels] if has_bias else 0, act)


def bias_activation_backward(real[:, :, ::1] dout, const real[:, :, ::1] out, int act,
                             real[::1] dbias):
    """In place dout (N, O, P) *= act'(out); dbias (O,) = dout summed over N and P, or None."""
    cdef Py_ssize_t o, n, p, length = dout.shape[2]
    cdef bint has_bias = dbias is not None
    cdef double total
    cdef real* d
    cdef const real* y
    if act == ACT_NONE and not has_bias:
        return
    for o in prange(dout.shape[1], nogil=True, num_threads=_num_threads,
                    use_threads_if=dout.shape[0] * dout.shape[1] * length > PARALLEL_MIN):
        total = 0
        for n in range(dout.shape[0]):
            d = &dout[n, o, 0]
            y = &out[n, o, 0]
            for p in range(length):
                d[p] = _activation_grad(d[p], y[p], act)
            if has_bias:
                total = total + _sum(d, length)
        if has_bias:
            dbias[o] = <real>total


# ---- element-wise (flat views of any shape) ---------------------------------------------
cdef Py_ssize_t ELEMENTWISE_CHUNK = 4096
def activation_forward(const real[::1] x, real[::1] out, int act):
    """out = act(x), in chunks of ELEMENTWISE_CHUNK."""
    cdef Py_ssize_t chunk, first, size = x.shape[0]
    cdef Py_ssize_t chunks = (size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    if size == 0:
        return
    for chunk in prange(chunks, nogil=True, num_threads=_num_threads,
                        use_threads_if=size > PARALLEL_MIN):
        first = chunk * ELEMENTWISE_CHUNK
        _bias_activate(&out[first], &x[first], min(size, first + ELEMENTWISE_CHUNK) - first, 0, act)


def activation_backward(const real[::1] dout, const real[::1] out, real[::1] dx, int act):
    """dx = dout * act'(out), the derivative written in terms of the forward output."""
    cdef Py_ssize_t i
    for i in prange(dout.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=dout.shape[0] > PARALLEL_MIN):
        dx[i] = _activation_grad(dout[i], out[i], act)


def multiply(const real[::1] a, const real[::1] b, real[::1] out):
    """out = a * b."""
    cdef Py_ssize_t i
    for i in prange(a.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=a.shape[0] > PARALLEL_MIN):
        out[i] = a[i] * b[i]


def softmax_forward(const real[:, ::1] x, real[:, ::1] out):
    """x (N, L) -> out (N, L), softmax of each row (max-subtracted)."""
    cdef Py_ssize_t row, j, top
    cdef real total
    for row in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                      use_threads_if=x.shape[0] * x.shape[1] > PARALLEL_MIN):
        top = _row_argmax(x, row)
        total = 0
        for j in range(x.shape[1]):
            out[row, j] = _exp(x[row, j] - x[row, top])
            total = total + out[row, j]
        for j in range(x.shape[1]):
            out[row, j] = out[row, j] / total


def log_softmax_forward(const real[:, ::1] x, real[:, ::1] out):
    """x (N, L) -> out (N, L) = x - max - log(sum(exp(x - max))) per row, in float64 (as
    the reference: the few classes of a row cost nothing)."""
    cdef Py_ssize_t row, j
    cdef double top, total
    for row in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                      use_threads_if=x.shape[0] * x.shape[1] > PARALLEL_MIN):
        top = x[row, _row_argmax(x, row)]
        total = 0
        for j in range(x.shape[1]):
            total = total + exp(x[row, j] - top)
        total = log(total)
        for j in range(x.shape[1]):
            out[row, j] = <real>(x[row, j] - top - total)


def log_softmax_backward(const real[:, ::1] dout, const real[:, ::1] out, real[:, ::1] dx):
    """dx (N, L) = dout - exp(out) * sum(dout) over each row, in float64."""
    cdef Py_ssize_t row, j
    cdef double total
    for row in prange(dout.shape[0], nogil=True, num_threads=_num_threads,
                      use_threads_if=dout.shape[0] * dout.shape[1] > PARALLEL_MIN):
        total = 0
        for j in range(dout.shape[1]):
            total = total + dout[row, j]
        for j in range(dout.shape[1]):
            dx[row, j] = <real>(dout[row, j] - exp(out[row, j]) * total)


def softmax_backward(const real[:, ::1] dout, const real[:, ::1] out, real[:, ::1] dx):
    """dx (N, L) = out * (dout - sum(dout * out) over each row)."""
    cdef Py_ssize_t row, j
    cdef real dot
    for row in prange(dout.shape[0], nogil=True, num_threads=_num_threads,
                      use_threads_if=dout.shape[0] * dout.shape[1] > PARALLEL_MIN):
        dot = 0
        for j in range(dout.shape[1]):
            dot = dot + dout[row, j] * out[row, j]
        for j in range(dout.shape[1]):
            dx[row, j] = out[row, j] * (dout[row, j] - dot)


# ---- losses (one pass each; they return (mean loss, correct count)) ------------------------
def softmax_cross_entropy(const real[:, ::1] logits, const int[::1] labels,
                          real[:, ::1] dlogits):
    """logits (N, L), labels (N,) -> dlogits (N, L) = (softmax - onehot) / N."""
    cdef Py_ssize_t rows = logits.shape[0], row, j, top, label
    cdef real total, scale = <real>1 / rows
    cdef double loss = 0
    cdef Py_ssize_t correct = 0
    for row in prange(rows, nogil=True, num_threads=_num_threads,
                      use_threads_if=logits.shape[0] * logits.shape[1] > PARALLEL_MIN):
        top = _row_argmax(logits, row)
        label = labels[row]
        total = 0
        for j in range(logits.shape[1]):
            dlogits[row, j] = _exp(logits[row, j] - logits[row, top])
            total = total + dlogits[row, j]
        loss += log(total) - (logits[row, label] - logits[row, top])
        correct += (top == label)
        total = scale / total
        for j in range(logits.shape[1]):
            dlogits[row, j] = dlogits[row, j] * total
        dlogits[row, label] = dlogits[row, label] - scale
    return loss / rows, correct


def mse_loss(const real[:, ::1] pred, const real[:, ::1] target, real[:, ::1] dpred):
    """pred, target (N, L) -> dpred (N, L) = 2 * (pred - target) / (N * L)."""
    cdef Py_ssize_t row, j
    cdef real diff, scale = <real>(2.0 / (pred.shape[0] * pred.shape[1]))
    cdef double loss = 0
    cdef Py_ssize_t correct = 0
    for row in prange(pred.shape[0], nogil=True, num_threads=_num_threads,
                      use_threads_if=pred.shape[0] * pred.shape[1] > PARALLEL_MIN):
        for j in range(pred.shape[1]):
            diff = pred[row, j] - target[row, j]
            loss += diff * diff
            dpred[row, j] = diff * scale
        correct += (_row_argmax(pred, row) == _row_argmax(target, row))
    return loss / (pred.shape[0] * pred.shape[1]), correct


# ---- dropout ------------------------------------------------------------------------------
# splitmix64 constants from fastcnn.kernels.contract.DROPOUT_CONSTANTS
cdef unsigned long long _GOLDEN = 0x9E3779B97F4A7C15ULL
cdef unsigned long long _MIX1 = 0xBF58476D1CE4E5B9ULL
cdef unsigned long long _MIX2 = 0x94D049BB133111EBULL


cdef inline double _dropout_uniform(unsigned long long seed, unsigned long long index) noexcept nogil:
    """contract.dropout_uniform(seed)[index], in uint64 wrap-around arithmetic."""
    cdef unsigned long long z = seed + (index + 1) * _GOLDEN
    z = (z ^ (z >> 30)) * _MIX1
    z = (z ^ (z >> 27)) * _MIX2
    z = z ^ (z >> 31)
    return <double>(z >> 40) * (1.0 / 16777216.0)


def dropout_forward(const real[::1] x, double p, unsigned long long seed, double scale,
                    real[::1] out, real[::1] mask):
    """Element i kept when dropout_uniform(seed)[i] >= p: mask = scale (float64, rounded
    once to real) there, else 0; out = x * mask."""
    cdef Py_ssize_t i
    for i in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=x.shape[0] > PARALLEL_MIN):
        mask[i] = <real>scale if _dropout_uniform(seed, i) >= p else 0
        out[i] = x[i] * mask[i]


# ---- optimizers (in place on flat views) ------------------------------------------------------
def sgd_update(real[::1] param, const real[::1] grad, real[::1] velocity,
               double lr, double momentum):
    """velocity = momentum * velocity + grad; param -= lr * velocity."""
    cdef Py_ssize_t i
    cdef real rate = <real>lr, keep = <real>momentum
    for i in prange(param.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=param.shape[0] > PARALLEL_MIN):
        velocity[i] = keep * velocity[i] + grad[i]
        param[i] -= rate * velocity[i]


def adam_update(real[::1] param, const real[::1] grad, real[::1] m, real[::1] v,
                double lr, double beta1, double beta2, double eps, long step):
    """PyTorch Adam with bias correction for ``step`` (>= 1)."""
    cdef Py_ssize_t i
    cdef real b1 = <real>beta1, b2 = <real>beta2, rate = <real>lr, epsilon = <real>eps
    cdef real one_minus_b1 = <real>(1 - beta1), one_minus_b2 = <real>(1 - beta2)
    cdef real correction1 = <real>(1 - beta1 ** step), correction2 = <real>(1 - beta2 ** step)
    cdef real g
    for i in prange(param.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=param.shape[0] > PARALLEL_MIN):
        g = grad[i]
        m[i] = b1 * m[i] + one_minus_b1 * g
        v[i] = b2 * v[i] + one_minus_b2 * g * g
        param[i] -= rate * (m[i] / correction1) / (_sqrt(v[i] / correction2) + epsilon)


# ---- every parameter in one parallel loop (contract.MULTI_TENSOR) ----------------------------
# table (T, 1 + arrays) int64: each parameter's size, then the addresses of its arrays;
# chunks (C, 3) int64: row, first, last element (kernels/multi_tensor.py). float32 only;
# the caller keeps the arrays alive. Each thread takes the next chunk when it is free.
cdef inline float* _at(const int64_t[:, ::1] table, Py_ssize_t row, Py_ssize_t column) noexcept nogil:
    return <float*><size_t>table[row, column]


def sgd_update_many(const int64_t[:, ::1] table, const int64_t[:, ::1] chunks, double lr,
                    double momentum, Py_ssize_t elements):
    """sgd_update on every parameter of the table."""
    cdef Py_ssize_t c, i, row
    cdef float rate = <float>lr, keep = <float>momentum
    cdef float* param
    cdef float* grad
    cdef float* velocity
    for c in prange(chunks.shape[0], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=elements > PARALLEL_MIN):
        row = chunks[c, 0]
        param, grad, velocity = _at(table, row, 1), _at(table, row, 2), _at(table, row, 3)
        for i in range(chunks[c, 1], chunks[c, 2]):
            velocity[i] = keep * velocity[i] + grad[i]
            param[i] -= rate * velocity[i]


def adam_update_many(const int64_t[:, ::1] table, const int64_t[:, ::1] chunks, double lr,
                     double beta1, double beta2, double eps, long step, Py_ssize_t elements):
    """adam_update on every parameter of the table."""
    cdef Py_ssize_t c, i, row
    cdef float b1 = <float>beta1, b2 = <float>beta2, rate = <float>lr, epsilon = <float>eps
    cdef float one_minus_b1 = <float>(1 - beta1), one_minus_b2 = <float>(1 - beta2)
    cdef float correction1 = <float>(1 - beta1 ** step), correction2 = <float>(1 - beta2 ** step)
    cdef float g
    cdef float* param
    cdef float* grad
    cdef float* m
    cdef float* v
    for c in prange(chunks.shape[0], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=elements > PARALLEL_MIN):
        row = chunks[c, 0]
        param, grad = _at(table, row, 1), _at(table, row, 2)
        m, v = _at(table, row, 3), _at(table, row, 4)
        for i in range(chunks[c, 1], chunks[c, 2]):
            g = grad[i]
            m[i] = b1 * m[i] + one_minus_b1 * g
            v[i] = b2 * v[i] + one_minus_b2 * g * g
            param[i] -= rate * (m[i] / correction1) / (sqrtf(v[i] / correction2) + epsilon)


def rmsprop_update(real[::1] param, const real[::1] grad, real[::1] square_avg,
                   real[::1] grad_avg, real[::1] momentum_buffer, double lr, double alpha,
                   double eps, double momentum, bint centered, bint with_momentum):
    """PyTorch RMSprop; grad_avg is read only when centered, momentum_buffer only with
    momentum (one-element stand-ins otherwise)."""
    cdef Py_ssize_t i
    cdef real a = <real>alpha, one_minus_a = <real>(1 - alpha), rate = <real>lr
    cdef real epsilon = <real>eps, keep = <real>momentum
    cdef real g, avg
    for i in prange(param.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=param.shape[0] > PARALLEL_MIN):
        g = grad[i]
        square_avg[i] = a * square_avg[i] + one_minus_a * g * g
        if centered:
            grad_avg[i] = a * grad_avg[i] + one_minus_a * g
            avg = _sqrt(square_avg[i] - grad_avg[i] * grad_avg[i]) + epsilon
        else:
            avg = _sqrt(square_avg[i]) + epsilon
        if with_momentum:
            momentum_buffer[i] = keep * momentum_buffer[i] + g / avg
            param[i] -= rate * momentum_buffer[i]
        else:
            param[i] -= rate * (g / avg)


def nesterov_update_many(const int64_t[:, ::1] table, const int64_t[:, ::1] chunks, double lr,
                         double momentum, Py_ssize_t elements):
    """SGD with Nesterov momentum on every parameter of the table (param, grad, velocity)."""
    cdef Py_ssize_t c, i, row
    cdef float rate = <float>lr, keep = <float>momentum
    cdef float* param
    cdef float* grad
    cdef float* velocity
    for c in prange(chunks.shape[0], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=elements > PARALLEL_MIN):
        row = chunks[c, 0]
        param, grad, velocity = _at(table, row, 1), _at(table, row, 2), _at(table, row, 3)
        for i in range(chunks[c, 1], chunks[c, 2]):
            velocity[i] = keep * velocity[i] + grad[i]
            param[i] -= rate * (grad[i] + keep * velocity[i])


def chunk_squares(const int64_t[:, ::1] table, const int64_t[:, ::1] chunks, double[::1] partial,
                  Py_ssize_t elements):
    """partial[c] = the float64 sum of squares of chunk c (table: size, address per array)."""
    cdef Py_ssize_t c, i
    cdef float* values
    cdef double total
    for c in prange(chunks.shape[0], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=elements > PARALLEL_MIN):
        values = _at(table, chunks[c, 0], 1)
        total = 0
        for i in range(chunks[c, 1], chunks[c, 2]):
            total = total + <double>values[i] * values[i]
        partial[c] = total


def scale_chunks(const int64_t[:, ::1] table, const int64_t[:, ::1] chunks, double factor,
                 Py_ssize_t elements):
    """Every element of every array of the table *= factor."""
    cdef Py_ssize_t c, i
    cdef float f = <float>factor
    cdef float* values
    for c in prange(chunks.shape[0], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=elements > PARALLEL_MIN):
        values = _at(table, chunks[c, 0], 1)
        for i in range(chunks[c, 1], chunks[c, 2]):
            values[i] = values[i] * f


def clip_chunks(const int64_t[:, ::1] table, const int64_t[:, ::1] chunks, double low,
                double high, Py_ssize_t elements):
    """Every element of every array of the table clamped to [low, high]; NaN stays."""
    cdef Py_ssize_t c, i
    cdef float lo = <float>low, hi = <float>high
    cdef float* values
    for c in prange(chunks.shape[0], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=elements > PARALLEL_MIN):
        values = _at(table, chunks[c, 0], 1)
        for i in range(chunks[c, 1], chunks[c, 2]):
            if values[i] < lo:
                values[i] = lo
            elif values[i] > hi:
                values[i] = hi


def adadelta_update(real[::1] param, const real[::1] grad, real[::1] square_avg,
                    real[::1] acc_delta, double lr, double rho, double eps):
    """PyTorch Adadelta."""
    cdef Py_ssize_t i
    cdef real r = <real>rho, one_minus_r = <real>(1 - rho), rate = <real>lr, epsilon = <real>eps
    cdef real g, delta
    for i in prange(param.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=param.shape[0] > PARALLEL_MIN):
        g = grad[i]
        square_avg[i] = r * square_avg[i] + one_minus_r * g * g
        delta = _sqrt(acc_delta[i] + epsilon) / _sqrt(square_avg[i] + epsilon) * g
        acc_delta[i] = r * acc_delta[i] + one_minus_r * delta * delta
        param[i] -= rate * delta


# ---- primitives (element-wise over flat views; per channel over (N, C, R) views) ---------
def axpby(double a, const real[::1] x, double b, const real[::1] y, real[::1] out):
    """out = a*x + b*y; out may be x or y."""
    cdef Py_ssize_t i
    for i in prange(out.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=out.shape[0] > PARALLEL_MIN):
        out[i] = <real>(a * x[i] + b * y[i])


def rsqrt(const real[::1] x, double eps, real[::1] out):
    """out = 1 / sqrt(x + eps); out may be x."""
    cdef Py_ssize_t i
    for i in prange(out.shape[0], nogil=True, num_threads=_num_threads,
                    use_threads_if=out.shape[0] > PARALLEL_MIN):
        out[i] = <real>(1.0 / sqrt(x[i] + eps))


def channel_sum(const real[:, :, ::1] x, double divisor, real[::1] out):
    """out (C,) = the sum of x (N, C, R) over N and R, in float64, over divisor."""
    cdef Py_ssize_t c, n
    cdef double total
    for c in prange(x.shape[1], nogil=True, num_threads=_num_threads,
                    use_threads_if=x.shape[0] * x.shape[1] * x.shape[2] > PARALLEL_MIN):
        total = 0
        for n in range(x.shape[0]):
            total = total + _sum(&x[n, c, 0], x.shape[2])
        out[c] = <real>(total / divisor)


def channel_affine(const real[:, :, ::1] x, const real[::1] scale, const real[::1] shift,
                   real[:, :, ::1] out):
    """out (N, C, R) = x * scale[c] + shift[c]; out may be x."""
    cdef Py_ssize_t plane, r, channels = x.shape[1], length = x.shape[2]
    cdef real a, b
    for plane in prange(x.shape[0] * channels, nogil=True, num_threads=_num_threads,
                        use_threads_if=x.shape[0] * channels * length > PARALLEL_MIN):
        a = scale[plane % channels]
        b = shift[plane % channels]
        for r in range(length):
            out[plane // channels, plane % channels, r] = x[plane // channels, plane % channels, r] * a + b


# ---- the layers past the tutorials (contract.LAYER_OPERATIONS) ------------------------------
# Tanh, LeakyReLU, ELU and GELU on flat views. float32 in plain arithmetic, so that the loops
# vectorise: tanh and GELU's erf as rational functions (fastcnn_tanhf, fastcnn_erff), and
# GELU's slope from one exp with erfc as Abramowitz & Stegun 7.1.26 (absolute error below
# 1.5e-7); float64 through libm.
cdef enum:
    TANH_FORWARD = 0
    TANH_BACKWARD = 1
    LEAKY_FORWARD = 2
    LEAKY_BACKWARD = 3
    ELU_FORWARD = 4
    ELU_BACKWARD = 5
    GELU_FORWARD = 6
    GELU_BACKWARD = 7
    GELU_TANH_FORWARD = 8
    GELU_TANH_BACKWARD = 9


cdef inline real _tanh(real v) noexcept nogil:
    if real is float:
        return fastcnn_tanhf(v)
    return tanh(v)


cdef inline real _gelu(real v) noexcept nogil:
    """x * Phi(x) as PyTorch writes it, x / 2 * (1 + erf(x / sqrt(2))). (<real>1, not 1: Cython
    writes a bare 1 as the double 1.0, which turns float32 arithmetic into float64.)"""
    if real is float:
        return <real>0.5 * v * (<real>1 + fastcnn_erff(v * <real>0.7071067811865476))
    return 0.5 * v * (1 + erf(v * 0.7071067811865476))


cdef inline real _normal_tail(real v, real e) noexcept nogil:
    """P(Z > |v|) for a standard normal Z, given e = exp(-v*v/2): erfc(|v|/sqrt(2)) / 2."""
    cdef real a = (v if v >= 0 else -v) * <real>0.7071067811865476
    cdef real t = <real>1 / (<real>1 + <real>0.3275911 * a)
    return <real>0.5 * ((((<real>1.061405429 * t - <real>1.453152027) * t + <real>1.421413741) * t
                          - <real>0.284496736) * t + <real>0.254829592) * t * e


cdef inline real _gelu_slope(real v, real* gelu) noexcept nogil:
    """The derivative of x * Phi(x) at v; writes the value into gelu."""
    cdef real e = _exp(<real>-0.5 * v * v)
    cdef real tail = _normal_tail(v, e)
    cdef real cdf = <real>1 - tail if v >= 0 else tail
    gelu[0] = v * cdf
    return cdf + v * e * <real>0.3989422804014327


cdef inline real _gelu_tanh_slope(real v, real* gelu) noexcept nogil:
    cdef real k = <real>0.7978845608028654
    cdef real t = _tanh(k * (v + <real>0.044715 * v * v * v))
    gelu[0] = <real>0.5 * v * (<real>1 + t)
    return (<real>0.5 * (<real>1 + t)
            + <real>0.5 * v * (<real>1 - t * t) * k * (<real>1 + <real>0.134145 * v * v))


cdef inline void _pointwise_chunk(int op, const real* a, const real* b, real* out, Py_ssize_t n,
                                  real k) noexcept nogil:
    """One loop per operation, chosen outside it (see _bias_activate). a: x or dout;
    b: the forward input or output the backward pass needs; k: slope or alpha."""
    cdef Py_ssize_t i
    cdef real value
    if op == TANH_FORWARD:
        for i in range(n):
            out[i] = _tanh(a[i])
    elif op == TANH_BACKWARD:
        for i in range(n):
            out[i] = a[i] * (<real>1 - b[i] * b[i])
    elif op == LEAKY_FORWARD:
        for i in range(n):
            out[i] = a[i] if a[i] > 0 else a[i] * k
    elif op == LEAKY_BACKWARD:
        for i in range(n):
            out[i] = a[i] if b[i] > 0 else a[i] * k
    elif op == ELU_FORWARD:
        for i in range(n):
            value = _exp(0 if a[i] > 0 else a[i])  # exp of x <= 0 (or NaN) only, either branch
            out[i] = a[i] if a[i] > 0 else k * (value - <real>1)
    elif op == ELU_BACKWARD:
        for i in range(n):
            value = _exp(0 if b[i] > 0 else b[i])
            out[i] = a[i] if b[i] > 0 else a[i] * k * value
    elif op == GELU_FORWARD:
        for i in range(n):
            out[i] = _gelu(a[i])
    elif op == GELU_BACKWARD:
        for i in range(n):
            if real is float:
                out[i] = a[i] * fastcnn_gelu_slopef(b[i])
            else:
                out[i] = a[i] * _gelu_slope(b[i], &value)
    elif op == GELU_TANH_FORWARD:
        for i in range(n):
            _gelu_tanh_slope(a[i], &value)
            out[i] = value
    elif op == GELU_TANH_BACKWARD:
        for i in range(n):
            out[i] = a[i] * _gelu_tanh_slope(b[i], &value)


def pointwise(int op, const real[::1] a, const real[::1] b, real[::1] out, double k):
    """out = op(a, b) element by element (see the enum above), in chunks of ELEMENTWISE_CHUNK."""
    cdef Py_ssize_t chunk, first, size = a.shape[0]
    cdef Py_ssize_t chunks = (size + ELEMENTWISE_CHUNK - 1) // ELEMENTWISE_CHUNK
    cdef real scalar = <real>k
    if size == 0:
        return
    for chunk in prange(chunks, nogil=True, num_threads=_num_threads,
                        use_threads_if=size > PARALLEL_MIN):
        first = chunk * ELEMENTWISE_CHUNK
        _pointwise_chunk(op, &a[first], &b[first], &out[first],
                         min(size, first + ELEMENTWISE_CHUNK) - first, scalar)


def global_avgpool2d_forward(const real[:, ::1] x, real[::1] out):
    """x planes (B, S) -> out (B,), the mean of each (summed in float64)."""
    cdef Py_ssize_t plane
    for plane in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=x.shape[0] * x.shape[1] > PARALLEL_MIN):
        out[plane] = <real>(_sum(&x[plane, 0], x.shape[1]) / x.shape[1])


def global_avgpool2d_backward(const real[::1] dout, real[:, ::1] dx):
    """dout (B,) -> dx planes (B, S) = dout / S."""
    cdef Py_ssize_t plane, s
    cdef real share
    for plane in prange(dx.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=dx.shape[0] * dx.shape[1] > PARALLEL_MIN):
        share = dout[plane] / dx.shape[1]
        for s in range(dx.shape[1]):
            dx[plane, s] = share


cdef inline Py_ssize_t _window_start(Py_ssize_t o, Py_ssize_t stride, Py_ssize_t padding) noexcept nogil:
    return o * stride - padding


def padded_maxpool2d_forward(const real[:, :, ::1] x, Py_ssize_t kernel, Py_ssize_t stride,
                             Py_ssize_t padding, real[:, :, ::1] out, int[:, :, ::1] argmax):
    """x planes (B, H, W) -> out, argmax (B, OH, OW): windows from o*stride - padding, clipped
    to the plane (the padding is -inf: never a winner); argmax = y*W + x, the first maximum
    or the first NaN."""
    cdef Py_ssize_t plane, oy, ox, y, xx, y0, y1, x0, x1, width = x.shape[2], best_at
    cdef real best
    for plane in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=x.shape[0] * x.shape[1] * x.shape[2] > PARALLEL_MIN):
        for oy in range(out.shape[1]):
            y0 = max(_window_start(oy, stride, padding), 0)
            y1 = min(_window_start(oy, stride, padding) + kernel, x.shape[1])
            for ox in range(out.shape[2]):
                x0 = max(_window_start(ox, stride, padding), 0)
                x1 = min(_window_start(ox, stride, padding) + kernel, width)
                best = x[plane, y0, x0]
                best_at = y0 * width + x0
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        if _beats(x[plane, y, xx], best):
                            best = x[plane, y, xx]
                            best_at = y * width + xx
                out[plane, oy, ox] = best
                argmax[plane, oy, ox] = <int>best_at


def padded_avgpool2d_forward(const real[:, :, ::1] x, Py_ssize_t kernel, Py_ssize_t stride,
                             Py_ssize_t padding, real[:, :, ::1] out):
    """x planes (B, H, W) -> out (B, OH, OW): window sums over the zero-padded plane / kernel**2."""
    cdef Py_ssize_t plane, oy, ox, y, xx, y0, y1, x0, x1
    cdef double total
    for plane in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=x.shape[0] * x.shape[1] * x.shape[2] > PARALLEL_MIN):
        for oy in range(out.shape[1]):
            y0 = max(_window_start(oy, stride, padding), 0)
            y1 = min(_window_start(oy, stride, padding) + kernel, x.shape[1])
            for ox in range(out.shape[2]):
                x0 = max(_window_start(ox, stride, padding), 0)
                x1 = min(_window_start(ox, stride, padding) + kernel, x.shape[2])
                total = 0
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        total = total + x[plane, y, xx]
                out[plane, oy, ox] = <real>(total / (kernel * kernel))


def padded_avgpool2d_backward(const real[:, :, ::1] dout, Py_ssize_t kernel, Py_ssize_t stride,
                              Py_ssize_t padding, real[:, :, ::1] dx):
    """dout (B, OH, OW) -> dx planes (B, H, W): each window's dout / kernel**2 added to the
    pixels of it inside the plane."""
    cdef Py_ssize_t plane, oy, ox, y, xx, y0, y1, x0, x1
    cdef real share
    for plane in prange(dx.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=dx.shape[0] * dx.shape[1] * dx.shape[2] > PARALLEL_MIN):
        _zero(&dx[plane, 0, 0], dx.shape[1] * dx.shape[2])
        for oy in range(dout.shape[1]):
            y0 = max(_window_start(oy, stride, padding), 0)
            y1 = min(_window_start(oy, stride, padding) + kernel, dx.shape[1])
            for ox in range(dout.shape[2]):
                x0 = max(_window_start(ox, stride, padding), 0)
                x1 = min(_window_start(ox, stride, padding) + kernel, dx.shape[2])
                share = dout[plane, oy, ox] / (kernel * kernel)
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        dx[plane, y, xx] += share


def dropout2d_forward(const real[:, ::1] x, double p, unsigned long long seed, double scale,
                      real[:, ::1] out, real[::1] mask):
    """x, out planes (B, S); mask (B,): plane i kept when dropout_uniform(seed)[i] >= p
    (mask = scale, float64 rounded once to real), else 0; out = x * mask."""
    cdef Py_ssize_t plane, s
    cdef real keep
    for plane in prange(x.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=x.shape[0] * x.shape[1] > PARALLEL_MIN):
        keep = <real>scale if _dropout_uniform(seed, plane) >= p else 0
        mask[plane] = keep
        for s in range(x.shape[1]):
            out[plane, s] = x[plane, s] * keep


def dropout2d_backward(const real[:, ::1] dout, const real[::1] mask, real[:, ::1] dx):
    """dout, dx planes (B, S); mask (B,) -> dx = dout * mask."""
    cdef Py_ssize_t plane, s
    cdef real keep
    for plane in prange(dout.shape[0], nogil=True, num_threads=_num_threads,
                        use_threads_if=dout.shape[0] * dout.shape[1] > PARALLEL_MIN):
        keep = mask[plane]
        for s in range(dout.shape[1]):
            dx[plane, s] = dout[plane, s] * keep


# ---- batch normalisation (one channel per parallel iteration; x viewed as (N, C, R)) --------
# Sums over a row of R values in the vector lanes (see _sum), added up in float64; the
# element-wise passes in the array's dtype, as PyTorch's: vectorised.
cdef inline double _centred_squares(const real* values, Py_ssize_t count, real mean) noexcept nogil:
    """sum((values - mean) ** 2)."""
    if real is float:
        return fastcnn_float_centred_squares(values, count, mean)
    return fastcnn_double_centred_squares(values, count, mean)


cdef inline double _sum_and_dot(const real* a, const real* b, Py_ssize_t count,
                                double* sum_a) noexcept nogil:
    """sum(a * b), adding sum(a) to sum_a, in one read of both."""
    if real is float:
        return fastcnn_float_dot(a, b, count, sum_a)
    return fastcnn_double_dot(a, b, count, sum_a)


cdef inline void _normalise_row(const real* x, real* xhat, real* out, Py_ssize_t count, real mean,
                                real inverse, real scale, real shift) noexcept nogil:
    cdef Py_ssize_t r
    cdef real h
    for r in range(count):
        h = (x[r] - mean) * inverse
        xhat[r] = h
        out[r] = h * scale + shift


cdef inline void _affine_row(const real* x, real* out, Py_ssize_t count, real scale,
                             real shift) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(count):
        out[r] = x[r] * scale + shift


cdef inline void _batchnorm_dx_row(const real* dout, const real* xhat, real* dx, Py_ssize_t count,
                                   real gain, real mean_d, real mean_dh) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(count):
        dx[r] = gain * (dout[r] - mean_d - xhat[r] * mean_dh)


def batchnorm_forward(const real[:, :, ::1] x, const real[::1] weight, const real[::1] bias,
                      real[::1] running_mean, real[::1] running_var, double momentum, double eps,
                      bint training, real[:, :, ::1] out, real[:, :, ::1] xhat, real[::1] invstd):
    """Training: batch mean and biased variance per channel (two reads of x), xhat, out and
    the running statistics (unbiased variance); inference: the running statistics, and
    with xhat None out = x * scale + shift alone (as PyTorch's inference kernel)."""
    cdef Py_ssize_t c, n, plane, chunk, chunks
    cdef Py_ssize_t batch = x.shape[0], channels = x.shape[1], length = x.shape[2]
    cdef double count = batch * length, total, mean, var, inverse
    cdef real a
    if not training:  # one pass in memory order, plane by plane: no statistics to gather
        for c in range(channels):
            invstd[c] = <real>(1.0 / sqrt(<double>running_var[c] + eps))
        if xhat is None:
            for plane in prange(batch * channels, nogil=True, num_threads=_num_threads,
                                use_threads_if=batch * channels * length > PARALLEL_MIN):
                n = plane // channels
                c = plane % channels
                a = weight[c] * invstd[c]
                _affine_row(&x[n, c, 0], &out[n, c, 0], length, a, bias[c] - running_mean[c] * a)
            return
        if real is float:  # in chunks of planes, one store fence after each
            chunks = min(batch * channels, 8 * _num_threads)
            for chunk in prange(chunks, nogil=True, num_threads=_num_threads,
                                use_threads_if=batch * channels * length > PARALLEL_MIN):
                fastcnn_float_normalise_streaming(
                    &x[0, 0, 0], &xhat[0, 0, 0], &out[0, 0, 0], chunk * batch * channels // chunks,
                    (chunk + 1) * batch * channels // chunks, channels, length, &running_mean[0],
                    &invstd[0], &weight[0], &bias[0])
            return
        for plane in prange(batch * channels, nogil=True, num_threads=_num_threads,
                            use_threads_if=batch * channels * length > PARALLEL_MIN):
            n = plane // channels
            c = plane % channels
            _normalise_row(&x[n, c, 0], &xhat[n, c, 0], &out[n, c, 0], length,
                           running_mean[c], invstd[c], weight[c], bias[c])
        return
    for c in prange(x.shape[1], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=batch * x.shape[1] * length > PARALLEL_MIN):
        if training:
            total = 0
            for n in range(batch):
                total = total + _sum(&x[n, c, 0], length)
            mean = total / count
            var = 0
            for n in range(batch):
                var = var + _centred_squares(&x[n, c, 0], length, <real>mean)
            var = var / count
            running_mean[c] = <real>((1 - momentum) * running_mean[c] + momentum * mean)
            running_var[c] = <real>((1 - momentum) * running_var[c]
                                    + momentum * var * count / (count - 1))
        else:
            mean = running_mean[c]
            var = running_var[c]
        inverse = 1.0 / sqrt(var + eps)
        invstd[c] = <real>inverse
        for n in range(batch):
            _normalise_row(&x[n, c, 0], &xhat[n, c, 0], &out[n, c, 0], length, <real>mean,
                           <real>inverse, weight[c], bias[c])


def batchnorm_backward(const real[:, :, ::1] dout, const real[:, :, ::1] xhat,
                       const real[::1] weight, const real[::1] invstd, bint training,
                       real[:, :, ::1] dx, real[::1] dweight, real[::1] dbias):
    """dbias, dweight per channel in one read of dout and xhat; dx (or None) in a second."""
    cdef Py_ssize_t c, n, batch = dout.shape[0], length = dout.shape[2]
    cdef double count = batch * length, sum_dh, mean_d, mean_dh
    cdef double* sum_d = <double*>calloc(dout.shape[1], sizeof(double))  # written through pointers
    cdef bint need_dx = dx is not None
    if sum_d == NULL:
        raise MemoryError("batchnorm_backward: no memory for the channel sums")
    for c in prange(dout.shape[1], nogil=True, num_threads=_num_threads, schedule="dynamic",
                    use_threads_if=batch * dout.shape[1] * length > PARALLEL_MIN):
        sum_dh = 0
        for n in range(batch):
            sum_dh = sum_dh + _sum_and_dot(&dout[n, c, 0], &xhat[n, c, 0], length, &sum_d[c])
        dbias[c] = <real>sum_d[c]
        dweight[c] = <real>sum_dh
        if need_dx:
            mean_d = sum_d[c] / count if training else 0
            mean_dh = sum_dh / count if training else 0
            for n in range(batch):
                _batchnorm_dx_row(&dout[n, c, 0], &xhat[n, c, 0], &dx[n, c, 0], length,
                                  weight[c] * invstd[c], <real>mean_d, <real>mean_dh)
    free(sum_d)
