"""Reading a run's where-it-ran record (:func:`xlbench.core.environment.describe` writes it):
the facts two runs differ in, and the lines people read. Pure: no torch, so the app can use it."""

from __future__ import annotations

LIBRARIES = ("torch", "numpy", "faiss-cpu", "sentence-transformers", "transformers", "tokenizers")
# The parts of a run's env that say where it ran (compared by facts_diff); the rest is incidental.
FACT_KEYS = ("hardware", "kernels", "libraries", "threads", "device")


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
