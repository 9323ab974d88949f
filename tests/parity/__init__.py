"""Parity with the real MMOCR 0.6.3 (fixtures in ../shared).

The fixtures were made with oneDNN's and MKL's AVX2 kernels; on an AVX-512 CPU the other
kernels move float32 results by about 1e-5. The variables are read when the first kernel runs,
so they are set here, before any test module of the package runs a convolution.
"""

import os

os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("MKL_ENABLE_INSTRUCTIONS", "AVX2")
