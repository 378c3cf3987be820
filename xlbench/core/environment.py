"""Where a run ran: the hardware, math kernels and library versions stored with every run.

Evaluation ranks do not depend on any of this (scores follow the grid rule, see
:mod:`xlbench.core.scoring`), but embeddings and training losses do: each comes out of float32
kernels chosen per CPU (MKL and oneDNN in torch, OpenBLAS in numpy, faiss' SIMD code), per thread
count and per device. So every run records them, and ``xlbench compare`` names the facts that
differ between the runs it compares (:func:`xlbench.core.facts.facts_diff`).
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata

from xlbench.core.facts import LIBRARIES

# Settings that choose a math-kernel path (and so can move float32 results in the last bits).
KERNEL_ENV = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE", "OMP_NUM_THREADS",
              "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str | None]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _torch_kernels(torch) -> dict:
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([^\s]+)", config)
    return {"blas": re.search(r"BLAS_INFO=(\w+)", config).group(1) if "BLAS_INFO=" in config else None,
            "mkl": mkl.group(1) if mkl else None,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


def blas_pools() -> list[dict]:
    """Every BLAS / OpenMP pool loaded in this process (threadpoolctl): library, version, kernel, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    pools = []
    for info in threadpool_info():
        pools.append({"api": info.get("user_api"), "library": info.get("internal_api"), "version": info.get("version"),
                      "kernel": info.get("architecture"), "threads": info.get("num_threads"),
                      "file": os.path.basename(info.get("filepath") or "")})
    return sorted(pools, key=lambda p: (p["api"] or "", p["library"] or "", p["file"]))


def describe(threads: int) -> dict:
    """The facts stored in a run's env (call after torch's thread count is set)."""
    import numpy  # noqa: F401  (loads OpenBLAS, so threadpoolctl can see it)
    import torch

    gpu = cuda = None
    device = "cpu"
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        cuda = torch.version.cuda
        device = f"cuda: {gpu}"
    return {
        "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "device": device, "threads": threads,
        "hardware": {"cpu": cpu_model(), "machine": platform.machine(), "cpus": os.cpu_count(), "gpu": gpu, "cuda": cuda},
        "kernels": {"torch": _torch_kernels(torch), "pools": blas_pools(),
                    "env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ}},
        "libraries": library_versions(),
    }
