"""Model FLOPs of a transformer encoder, and how much of a device's arithmetic a run used.

A forward pass over a text of ``s`` tokens costs ``2 N s + 4 L H s²`` floating-point operations:
``N`` is the number of weights outside the embedding tables (each used in one multiply-add per
token), and attention adds ``Q Kᵀ`` and ``A V`` (``2 s² H`` each per layer, ``L`` layers of width
``H``). Training costs three forward passes (the backward pass is two). Only real tokens count:
padding is work the device did that the model did not need, so the model FLOPs utilisation
(MFU) shown here is the useful share of the device's dense peak, as in the PaLM paper's
definition, and the padding shows up as lost utilisation.

Peaks are the vendors' dense figures (no sparsity) for the precision the matrix products run in:
bf16 / fp16 on tensor cores, and plain fp32 (torch leaves TF32 off for matrix products unless
``torch.backends.cuda.matmul.allow_tf32`` is set; then the fp32 figure understates the peak).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (name fragment, as torch.cuda.get_device_name prints it) → TFLOP/s dense, per precision. The first
# fragment found in the name wins, so the more specific ones come first.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "fp32": 51.2}),
    ("H100 NVL", {"bf16": 835.0, "fp16": 835.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}),  # SXM
    ("H200", {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.1, "fp16": 362.1, "fp32": 91.6}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "fp32": 31.2}),
)


@dataclass(frozen=True)
class EncoderShape:
    """What the FLOPs count needs: layers, width, and the weights outside the embeddings."""

    layers: int
    hidden: int
    weights: int

    def forward_flops(self, lengths) -> float:
        """FLOPs of one forward pass over texts of these token lengths."""
        s = np.asarray(lengths, dtype=np.float64)
        return float((2.0 * self.weights * s + 4.0 * self.layers * self.hidden * s * s).sum())

    def training_flops(self, lengths) -> float:
        """FLOPs of a forward and backward pass over texts of these token lengths."""
        return 3.0 * self.forward_flops(lengths)


def encoder_shape(module) -> EncoderShape | None:
    """The shape of a sentence-transformers model (or a bare transformers encoder), or None when
    the module does not say (an encoder plugin's own network: no MFU is reported for it)."""
    from xlbench.core.encoders.st import transformer_of

    inner = transformer_of(module)
    if inner is None:  # a bare transformers model, or sentence-transformers' Transformer module alone
        inner = getattr(module, "auto_model", module)
    config = getattr(inner, "config", None)
    layers = getattr(config, "num_hidden_layers", None)
    hidden = getattr(config, "hidden_size", None)
    if not isinstance(layers, int) or not isinstance(hidden, int) or not hasattr(inner, "named_parameters"):
        return None
    weights = sum(p.numel() for name, p in inner.named_parameters() if "embeddings" not in name)
    return EncoderShape(layers, hidden, int(weights))


def peak_flops(device_name: str, precision: str) -> float | None:
    """The dense peak in FLOP/s of a GPU named ``device_name`` at ``precision`` (None if unknown)."""
    for fragment, peaks in PEAK_TFLOPS:
        if fragment in device_name:
            value = peaks.get(precision)
            return None if value is None else value * 1e12
    return None


def utilisation(flops: float, seconds: float, device_name: str, precision: str) -> dict:
    """Achieved TFLOP/s and, where the device's peak is known, the MFU (a share, 0–1)."""
    achieved = flops / seconds if seconds > 0 else 0.0
    peak = peak_flops(device_name, precision)
    return {"tflops": achieved / 1e12, "mfu": achieved / peak if peak else None,
            "peak_tflops": peak / 1e12 if peak else None}
