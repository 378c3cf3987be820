"""How the trainer feeds a device: length buckets, losses read every few steps, batches prepared
in a thread, model FLOPs. On CUDA these are on by default; here each is switched on by hand on the
CPU, where the defaults must keep earlier runs' numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from xlbench.core.flops import EncoderShape, encoder_shape, peak_flops, utilisation
from xlbench.errors import TrainingError


@pytest.fixture(scope="module")
def corpus():
    from xlbench.core.data.parallel import load_lareqa_training
    from xlbench.core.data.sources import bundled_xquad_r

    return load_lareqa_training(bundled_xquad_r(), languages=["de", "en", "es"], candidate_text="sentence")


def make_trainer(tiny_model, corpus, run_dir: Path, *, dropout: bool = True, prefetch: bool = False, **settings):
    import torch

    from xlbench.core.encoders.st import SentenceTransformerEncoder
    from xlbench.core.samplers.builtin import HybridSampler
    from xlbench.core.train import Trainer
    from xlbench.core.train_settings import TrainSettings

    torch.set_num_threads(1)
    trainable = SentenceTransformerEncoder(str(tiny_model)).trainable()
    if not dropout:  # the same loss whatever the batch's split, so trajectories can be compared
        for module in trainable.module.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    options = {"batch_size": 16, "max_steps": 10, "val_every": 0, "checkpoint_every": 0, "lr": 1e-3, "seed": 4, **settings}
    logs = []
    trainer = Trainer(trainable, corpus, HybridSampler(corpus, batch_size=options["batch_size"], seed=2),
                      TrainSettings(**options), run_dir=run_dir, on_step=logs.append)
    trainer.prefetch = prefetch
    return trainer, logs


def test_cpu_defaults_are_one_bucket_every_step_read_no_thread(tiny_model, corpus, tmp_path):
    trainer, _ = make_trainer(tiny_model, corpus, tmp_path)
    assert (trainer.batches.buckets, trainer.read_every, trainer.prefetch) == (1, 1, False)
    assert "fused" not in trainer.optimizer.defaults or not trainer.optimizer.defaults["fused"]


def test_buckets_and_deferred_reads_give_the_same_trajectory(tiny_model, corpus, tmp_path):
    plain, plain_logs = make_trainer(tiny_model, corpus, tmp_path / "a", dropout=False)
    plain.train()
    fed, fed_logs = make_trainer(tiny_model, corpus, tmp_path / "b", dropout=False, length_buckets=3, read_every=4)
    fed.train()
    assert [log.step for log in fed_logs] == list(range(1, 11))  # every step, in order, read 4 at a time
    np.testing.assert_allclose([log.loss for log in fed_logs], [log.loss for log in plain_logs], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([log.grad_norm for log in fed_logs], [log.grad_norm for log in plain_logs], rtol=1e-3)
    assert all(a.tokens == b.tokens > 0 for a, b in zip(fed_logs, plain_logs))  # real tokens do not depend on the split
    assert sum(log.padded_tokens for log in fed_logs) < sum(log.padded_tokens for log in plain_logs)
    assert all(log.padded_tokens >= log.tokens for log in fed_logs)
    # a window's logs share its rate; the reads fell after steps 4, 8 and 10
    assert len({log.samples_per_s for log in fed_logs[:4]}) == 1 and fed_logs[3].samples_per_s != fed_logs[4].samples_per_s


def test_a_resumed_run_with_a_prefetching_thread_continues_exactly(tiny_model, corpus, tmp_path):
    """The thread draws batches ahead of the step; the checkpoint must still hold the sampler's
    state after the last batch trained on, or a resumed run would skip batches."""
    whole, whole_logs = make_trainer(tiny_model, corpus, tmp_path / "whole", prefetch=True, read_every=3)
    whole.train()
    first, _ = make_trainer(tiny_model, corpus, tmp_path / "cut", prefetch=True, read_every=3, max_steps=10,
                            checkpoint_every=5)
    first.s = first.s.model_copy(update={"max_steps": 5})
    first.train()
    checkpoint = tmp_path / "cut" / "checkpoints" / "step-00000005"
    assert checkpoint.is_dir()
    second, second_logs = make_trainer(tiny_model, corpus, tmp_path / "cut", prefetch=True, read_every=3)
    second.train(resume_from=checkpoint)
    assert [log.step for log in second_logs] == [6, 7, 8, 9, 10]
    assert [log.loss for log in second_logs] == [log.loss for log in whole_logs[5:]]


def test_a_loss_read_late_still_names_its_step_and_the_steps_before_it_are_kept(tiny_model, corpus, tmp_path, monkeypatch):
    from xlbench.core import train

    real = train.Trainer.batch_loss

    def diverge(self, *a, **k):
        loss = real(self, *a, **k)
        return loss * float("nan") if self.state.step >= 5 else loss

    monkeypatch.setattr(train.Trainer, "batch_loss", diverge)
    trainer, logs = make_trainer(tiny_model, corpus, tmp_path, read_every=4)
    with pytest.raises(TrainingError, match="training diverged at step 6: the loss is nan"):
        trainer.train()
    assert [log.step for log in logs] == [1, 2, 3, 4, 5]


def test_flops_by_hand_and_the_models_shape(tiny_model):
    shape = EncoderShape(layers=2, hidden=8, weights=100)
    # one text of 3 tokens: 2·100·3 + 4·2·8·9 = 600 + 576
    assert shape.forward_flops([3]) == 1176.0
    assert shape.training_flops([3, 1]) == 3 * (1176.0 + 2 * 100 + 4 * 2 * 8)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    found = encoder_shape(model)
    inner = model[0].auto_model
    assert (found.layers, found.hidden) == (inner.config.num_hidden_layers, inner.config.hidden_size)
    embeddings = sum(p.numel() for n, p in inner.named_parameters() if "embeddings" in n)
    assert found.weights == sum(p.numel() for p in inner.parameters()) - embeddings > 0
    assert encoder_shape(object()) is None


def test_peaks_by_card_name():
    assert math.isclose(peak_flops("NVIDIA H100 80GB HBM3", "bf16"), 989.4e12)
    assert math.isclose(peak_flops("NVIDIA H100 PCIe", "bf16"), 756e12)
    assert math.isclose(peak_flops("NVIDIA H200", "fp32"), 66.9e12)
    assert math.isclose(peak_flops("NVIDIA A100-SXM4-80GB", "bf16"), 312e12)
    assert peak_flops("cpu", "fp32") is None
    u = utilisation(989.4e12 * 0.25, 2.0, "NVIDIA H200", "bf16")
    assert math.isclose(u["mfu"], 0.125) and math.isclose(u["tflops"], 989.4 * 0.125)


def test_the_trainer_reports_its_throughput(tiny_model, corpus, tmp_path):
    trainer, logs = make_trainer(tiny_model, corpus, tmp_path, read_every=2, length_buckets=2)
    assert trainer.utilisation() is None
    trainer.train()
    u = trainer.utilisation()
    assert u["steps"] == 8  # the first read's two steps carry start-up
    assert u["samples_per_s"] > 0 and u["tflops"] > 0 and u["mfu"] is None  # no peak known for a CPU
    expected = sum(log.flops for log in logs[2:]) / sum(log.seconds for log in logs[2:]) / 1e12
    assert math.isclose(u["tflops"], expected, rel_tol=1e-9)
    assert 0 <= u["padding"] < 1


@pytest.mark.slow
def test_a_compiled_encoder_trains_like_the_plain_one_and_saves_the_same_names(tiny_model, corpus, tmp_path):
    plain, plain_logs = make_trainer(tiny_model, corpus, tmp_path / "a", dropout=False, max_steps=3)
    plain.train()
    compiled, compiled_logs = make_trainer(tiny_model, corpus, tmp_path / "b", dropout=False, max_steps=3, compile=True,
                                           checkpoint_every=3)
    compiled.train()
    np.testing.assert_allclose([log.loss for log in compiled_logs], [log.loss for log in plain_logs], rtol=1e-4)
    assert compiled.module.state_dict().keys() == plain.module.state_dict().keys()
    assert (tmp_path / "b" / "checkpoints" / "step-00000003" / "model.safetensors").exists()
