"""Where a run ran: the hardware, math kernels and library versions stored with every run.

Evaluation ranks do not depend on any of this (scores follow the grid rule, see
:mod:`xlbench.core.scoring`), but embeddings and training losses do: each comes out of float32
kernels chosen per CPU (MKL and oneDNN in torch, OpenBLAS in numpy, faiss' SIMD code), per thread
count and per device. So every run records them, and ``xlbench compare`` names the facts that
differ between the runs it compares (:func:`facts_diff`).
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata

# Settings that choose a math-kernel path (and so can move float32 results in the last bits).
KERNEL_ENV = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE", "OPENBLAS_VERBOSE", "OMP_NUM_THREADS",
              "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
LIBRARIES = ("torch", "numpy", "faiss-cpu", "sentence-transformers", "transformers", "tokenizers")
# The parts of a run's env that say where it ran (compared by facts_diff); the rest is incidental.
FACT_KEYS = ("hardware", "kernels", "libraries", "threads", "device")


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


def flat_facts(env: dict) -> dict:
    """The where-it-ran part of a run's env as dotted keys (pools keyed by library and file)."""
    out: dict = {}

    def walk(value, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}")
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for v in value:
                walk({k: x for k, x in v.items() if k not in ("library", "file")}, f"{key}.{v.get('library')}:{v.get('file')}")
        else:
            out[key] = value

    for key in FACT_KEYS:
        if key in env:
            walk(env[key], key)
    return out


def facts_diff(envs: list[dict]) -> dict[str, list]:
    """Fact keys whose values differ between runs (a run recorded before facts existed gives None)."""
    flat = [flat_facts(e) for e in envs]
    keys = sorted(set().union(*flat)) if flat else []
    return {k: [f.get(k) for f in flat] for k in keys if len({repr(f.get(k)) for f in flat}) > 1}


def summary_lines(env: dict) -> list[str]:
    """A run's where-it-ran facts for people (the run screen's config tab, ``xlbench runs show``)."""
    if "hardware" not in env:
        return [f"device {env.get('device', '?')} · threads {env.get('threads', '?')} (no hardware facts recorded)"]
    hw, kernels, libs = env["hardware"], env.get("kernels", {}), env.get("libraries", {})
    torch_k = kernels.get("torch", {})
    gpu = f" · gpu {hw['gpu']} (CUDA {hw.get('cuda')})" if hw.get("gpu") else ""
    lines = [f"cpu {hw.get('cpu')} ({hw.get('machine')}, {hw.get('cpus')} cpus){gpu} · {env.get('threads')} thread(s)",
             f"torch {libs.get('torch')} ({torch_k.get('blas')} {torch_k.get('mkl') or ''} {torch_k.get('cpu_capability')}, "
             f"{torch_k.get('threads')} threads)".replace("  ", " ")]
    lines.append(" · ".join(f"{name} {libs[name]}" for name in LIBRARIES[1:] if libs.get(name)))
    for pool in kernels.get("pools", []):
        kernel = f" kernel {pool['kernel']}" if pool.get("kernel") else ""
        version = f" {pool['version']}" if pool.get("version") else ""
        lines.append(f"{pool.get('api')}: {pool.get('library')}{version}{kernel}, {pool.get('threads')} threads "
                     f"({pool.get('file')})")
    if kernels.get("env"):
        lines.append("kernel settings: " + " ".join(f"{k}={v}" for k, v in kernels["env"].items()))
    return lines
