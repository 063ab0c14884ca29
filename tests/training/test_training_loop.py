"""The shared training loop: optimizer groups, schedules, accumulation, clipping, bf16, evaluation,
best checkpoint, early stopping, metrics.jsonl, and the pretraining objective on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from fnet.config import FNetConfig
from fnet.data.collate import ListDataset, StepBatches
from fnet.modeling import FNetForPreTraining, FNetForSequenceClassification
from fnet.training import resume
from fnet.training.loop import Callback, Trainer, TrainerConfig, clip_grad_norm, train
from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler, lr_factor, param_groups

from pretraining_helpers import one_thread, read_metrics  # noqa: F401 (fixture)

SEQ = 16


def tiny_config(**overrides) -> FNetConfig:
    base = dict(vocab_size=50, hidden_size=32, num_hidden_layers=1, intermediate_size=64, max_position_embeddings=SEQ,
                hidden_dropout_prob=0.0, pad_token_id=3, num_labels=2)
    base.update(overrides)
    return FNetConfig(**base)


def toy_examples(n: int = 96, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Label 1 rows use tokens 30..49, label 0 rows 10..29: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        label = i % 2
        ids = torch.randint(10 + 20 * label, 30 + 20 * label, (SEQ,), generator=g)
        out.append({"input_ids": ids, "attention_mask": torch.ones(SEQ, dtype=torch.long), "labels": torch.tensor(label)})
    return out


def stack(rows):
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def make(tmp_path=None, batch=8, accum=1, max_steps=30, lr=3e-3, seed=0, evaluate=None, **trainer_kwargs):
    torch.manual_seed(seed)
    model = FNetForSequenceClassification(tiny_config())
    optim = OptimConfig(lr=lr, warmup_steps=3, weight_decay=0.01)
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, optim, max_steps)
    data = StepBatches(ListDataset(toy_examples(), stack), batch, accum, seed=seed)
    config = TrainerConfig(max_steps=max_steps, output_dir=str(tmp_path) if tmp_path else None, log_every=1,
                           progress=False, seed=seed, **trainer_kwargs)
    return Trainer(model, optimizer, data, config, scheduler=scheduler, evaluate=evaluate)


def rerun_model():
    return FNetForSequenceClassification(tiny_config())


def accuracy_eval(examples):
    batch = stack(examples)

    def evaluate(model):
        out = model(**batch)
        return {"eval_loss": float(out.loss), "eval_accuracy": float((out.logits.argmax(-1) == batch["labels"]).float().mean())}

    return evaluate


# ----------------------------------------------------------------------------- optim


def test_no_weight_decay_on_biases_and_norms():
    model = FNetForPreTraining(tiny_config())
    decay, plain = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert plain["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01
    assert not any(n.endswith(".bias") or "LayerNorm" in n or "layer_norm" in n.lower() for n in decayed), decayed
    assert any("word_embeddings" in n for n in decayed) and any("dense.weight" in n for n in decayed)
    n_unique = len({id(p) for p in model.parameters()})
    assert len(decay["params"]) + len(plain["params"]) == n_unique


def test_warmup_then_linear_or_cosine_decay():
    assert [lr_factor(s, 4, 20) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(12, 4, 20) == pytest.approx(0.5)
    assert lr_factor(20, 4, 20) == 0.0
    assert lr_factor(12, 4, 20, "cosine") == pytest.approx(0.5)
    assert lr_factor(8, 4, 20, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    with pytest.raises(ValueError, match="unknown schedule"):
        OptimConfig(schedule="step").validate()


def test_a_time_budget_moves_the_schedule_along_with_the_clock():
    # the clock ahead of the steps: read at time_fraction * max_steps
    assert lr_factor(2, 4, 20, time_fraction=0.6) == pytest.approx(lr_factor(12, 4, 20)) == pytest.approx(0.5)
    assert lr_factor(0, 4, 20, time_fraction=0.1) == pytest.approx(0.75)  # inside warmup: position 2
    assert lr_factor(3, 4, 20, "cosine", time_fraction=1.0) == 0.0
    # the steps ahead of the clock: the plain step schedule
    assert lr_factor(12, 4, 20, time_fraction=0.1) == lr_factor(12, 4, 20)


class _SecondPerStep(Callback):
    """Each step 'takes' one more second of training time; records the lr each step ran at."""

    def __init__(self):
        self.lrs = []

    def on_step_end(self, trainer, step, logs):
        trainer.elapsed += 1.0
        self.lrs.append(logs["lr"])


def test_a_run_stopped_by_its_time_budget_warms_up_and_decays_to_zero_within_it():
    clock = _SecondPerStep()
    trainer = make(max_steps=100, lr=1e-3, max_time_s=10.0)  # warmup 3 of 100 steps; ~10 steps fit the budget
    trainer.callbacks.append(clock)
    trainer.train()
    assert trainer.step == 11 and trainer.should_stop  # a callback's second is seen by the next step's check
    lrs = clock.lrs
    assert lrs[:2] == [pytest.approx(1e-3 / 3), pytest.approx(2e-3 / 3)]  # warmup, before the clock counts
    assert lrs[2] > 0.9e-3  # then 10% of the run per second: past the warmup, near the peak
    assert all(b < a for a, b in zip(lrs[2:], lrs[3:]))  # and decaying every step
    assert lrs[-1] < 0.15e-3 and trainer.scheduler.get_last_lr()[0] == 0.0  # to 0 at the budget's end
    # a budget the steps outrun leaves the step schedule alone
    steps_only, timed = make(max_steps=20), make(max_steps=20, max_time_s=3600.0)
    steps_only.train()
    timed.train()
    assert timed.scheduler.get_last_lr() == steps_only.scheduler.get_last_lr() == [0.0, 0.0]
    for a, b in zip(steps_only.model.parameters(), timed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_every_rank_runs_the_schedule_and_the_stop_on_rank_0s_clock():
    from fnet.training.distributed import DistContext

    class Rank1(DistContext):  # rank 0's clock reads `rank0` seconds; this rank's own clock is ignored
        rank0 = 0.0

        def all_reduce_sum(self, values):
            return values + torch.tensor([self.rank0], dtype=values.dtype)

    trainer = make(max_time_s=10.0)
    trainer.dist = Rank1(rank=1, world_size=2)
    trainer.elapsed = 2.0
    trainer.dist.rank0 = 6.0
    trainer._check_time()
    assert trainer.scheduler.time_fraction == pytest.approx(0.6) and not trainer.should_stop
    trainer.dist.rank0 = 10.5
    trainer._check_time()
    assert trainer.scheduler.time_fraction == 1.0 and trainer.should_stop


def test_the_schedules_clock_is_saved_with_it():
    model = torch.nn.Linear(2, 2)
    optim = OptimConfig(lr=1.0, warmup_steps=2)
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, optim, 10)
    scheduler.time_fraction = 0.5
    optimizer.step()
    scheduler.step()
    restored = build_scheduler(build_optimizer(model, optim), optim, 10)
    restored.load_state_dict(resume.decode_state(*resume.encode_state(scheduler.state_dict())))
    assert restored.time_fraction == 0.5 and restored.last_epoch == 1
    assert restored.get_lr() == scheduler.get_lr() == [pytest.approx(0.625)] * 2


def _adamw_run(threads: int, optimizer_fn, steps: int = 5) -> list[torch.Tensor]:
    """Weights after ``steps`` AdamW steps on fixed random gradients (odd sizes, one large enough to
    be split over threads); the gradients are the same whatever the optimizer and thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Embedding(1000, 37), torch.nn.Linear(37, 3001), torch.nn.LayerNorm(3001))
        optimizer = optimizer_fn(model)
        g = torch.Generator().manual_seed(1)
        for _ in range(steps):
            for p in model.parameters():
                p.grad = torch.randn(p.shape, generator=g)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return [p.detach().clone() for p in model.parameters()]
    finally:
        torch.set_num_threads(previous)


def test_build_optimizer_is_fused_and_matches_the_per_parameter_loop():
    config = OptimConfig(lr=1e-2, weight_decay=0.1, betas=(0.8, 0.9), eps=1e-5)
    fused = _adamw_run(1, lambda m: build_optimizer(m, config))
    reference = _adamw_run(1, lambda m: torch.optim.AdamW(param_groups(m, config.weight_decay), lr=config.lr,
                                                           betas=config.betas, eps=config.eps, foreach=False))
    worst = max((a - b).abs().max().item() for a, b in zip(fused, reference))
    assert worst <= 1e-5, f"fused AdamW differs from the per-parameter loop by {worst:.3g}"
    start = _adamw_run(1, lambda m: build_optimizer(m, config), steps=0)
    assert min((a - b).abs().max().item() for a, b in zip(fused, start)) > 1e-2, "a parameter did not move"
    two_threads = _adamw_run(2, lambda m: build_optimizer(m, config))
    for a, b in zip(fused, two_threads):
        assert torch.equal(a, b), f"the update depends on the thread count: {(a - b).abs().max():.3g}"
    optimizer = build_optimizer(FNetForPreTraining(tiny_config()), config)
    assert all(group["fused"] for group in optimizer.param_groups)


@pytest.mark.parametrize("limit", ["clips", "at the norm", "within"])
def test_clip_grad_norm_equals_torch_bit_for_bit(limit):
    def grads():
        torch.manual_seed(0)
        model = FNetForSequenceClassification(tiny_config())
        model(**stack(toy_examples(8))).loss.backward()
        return [p for p in model.parameters() if p.grad is not None]

    ours, torchs = grads(), grads()
    norm = float(torch.nn.utils.clip_grad_norm_(grads(), float("inf")))  # the norm alone
    # at the norm itself torch still scales, by max_norm / (norm + 1e-6) < 1
    max_norm = {"clips": norm / 3, "at the norm": norm, "within": norm * 3}[limit]
    assert clip_grad_norm(ours, max_norm) == float(torch.nn.utils.clip_grad_norm_(torchs, max_norm))
    for a, b in zip(ours, torchs):
        assert torch.equal(a.grad, b.grad), f"max abs diff {(a.grad - b.grad).abs().max():.3g}"
    assert limit == "within" or any(not torch.equal(a.grad, c.grad) for a, c in zip(ours, grads())), "nothing clipped"


# ----------------------------------------------------------------------------- the loop


def test_loop_learns_and_writes_metrics(tmp_path):
    examples = toy_examples(64, seed=1)
    trainer = make(tmp_path, max_steps=40, evaluate=accuracy_eval(examples), eval_every=20)
    result = trainer.train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, 41))
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"} <= set(train_rows[0])
    assert train_rows[-1]["loss"] < 0.5 * train_rows[0]["loss"], (train_rows[0]["loss"], train_rows[-1]["loss"])
    evals = [r for r in rows if "eval_accuracy" in r]
    assert [r["step"] for r in evals] == [20, 40]
    assert result.last_eval["eval_accuracy"] > 0.9
    # lr followed the schedule: warmup 3 steps then linear decay
    assert train_rows[0]["lr"] == pytest.approx(3e-3 / 3) and train_rows[2]["lr"] == pytest.approx(3e-3)


def test_grad_accumulation_equals_the_big_batch():
    big = make(batch=8, accum=1, max_steps=5)
    small = make(batch=4, accum=2, max_steps=5)
    big.train(), small.train()
    for (name, a), (_, b) in zip(big.model.named_parameters(), small.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), f"{name}: max abs diff {(a - b).abs().max():.3g}"


def test_gradient_clipping_bounds_the_update():
    seen = []

    class Spy(Callback):
        def on_step_end(self, trainer, step, logs):
            seen.append(logs["grad_norm"])

    trainer = make(max_steps=2, clip_grad=1e-3, lr=1.0)
    trainer.callbacks.append(Spy())
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    assert min(seen) > 1e-3, "the logged norm is the norm before clipping"
    # Adam normalises the step size, so check the clipped gradient itself on a fresh step
    trainer2 = make(max_steps=1, clip_grad=1e-3)
    batch = trainer2.data.micro_batches(0)[0]
    trainer2.model(**batch).loss.backward()
    total = torch.nn.utils.clip_grad_norm_(trainer2.model.parameters(), 1e-3)
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer2.model.parameters() if p.grad is not None]))
    assert total > 1e-3 and clipped == pytest.approx(1e-3, rel=1e-3)
    assert any(not torch.equal(b, a) for b, a in zip(before, trainer.model.parameters()))


def test_bf16_autocast_trains():
    trainer = make(max_steps=4, bf16=True)
    result = trainer.train()
    assert math.isfinite(result.last_logs["loss"])
    assert next(trainer.model.parameters()).dtype == torch.float32, "weights stay float32 under autocast"


def test_best_checkpoint_and_early_stopping(tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9, 0.95])
    evaluations = []

    def evaluate(model):
        value = next(scores)
        evaluations.append(value)
        return {"eval_accuracy": value}

    trainer = make(tmp_path, max_steps=30, evaluate=evaluate, eval_every=2, best_metric="eval_accuracy",
                   early_stopping_patience=2, save_every=2, keep_last=2)
    result = trainer.train()
    assert evaluations == [0.5, 0.7, 0.6, 0.65], "stops after 2 evaluations without improvement"
    assert result.stopped_early and result.step == 8
    assert result.best_metric == 0.7 and result.best_step == 4
    best = FNetForSequenceClassification.from_pretrained(tmp_path / "best")
    assert (tmp_path / "best" / "best.json").is_file()
    assert [s for s, _ in resume.list_checkpoints(tmp_path)] == [6, 8], "keep_last=2"
    saved = resume.load_checkpoint(tmp_path / "checkpoints" / "step-8", rerun_model(), restore_rng=False)
    assert saved["best_step"] == 4 and saved["bad_evals"] == 2
    # best/ holds the weights of step 4 (its checkpoint was pruned): compare with a re-run stopped there

    class StopAt4(Callback):
        def on_step_end(self, trainer, step, logs):
            trainer.should_stop = step == 4

    rerun = make(max_steps=30)
    rerun.callbacks.append(StopAt4())
    rerun.train()
    for (name, a), (_, b) in zip(rerun.model.named_parameters(), best.named_parameters()):
        assert torch.equal(a, b), f"{name}: max abs diff {(a - b).abs().max():.3g}"


def test_epoch_evaluation_and_functional_train(tmp_path):
    data = StepBatches(ListDataset(toy_examples(32), stack), 8)
    assert data.steps_per_epoch == 4
    torch.manual_seed(0)
    model = FNetForSequenceClassification(tiny_config())
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
    steps = []
    result = train(model, optimizer, data, TrainerConfig(max_steps=12, eval_every_epoch=True, eval_at_end=False,
                                                         progress=False),
                   evaluate=lambda m: steps.append(1) or {"eval_loss": 1.0})
    assert result.step == 12 and len(steps) == 3, "one evaluation per epoch"


def test_pretraining_objective_on_tiny_model():
    from fnet.training.objectives import evaluate_pretraining, pretraining_loss

    torch.manual_seed(0)
    model = FNetForPreTraining(tiny_config())
    ids = torch.randint(7, 50, (4, SEQ))
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    batch = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": torch.ones_like(ids),
             "labels": labels, "next_sentence_label": torch.tensor([0, 1, 0, 1])}
    loss, stats = pretraining_loss(model, batch)
    reference = model(**batch)  # full-vocabulary logits
    assert torch.allclose(loss, reference.loss, atol=1e-5)
    metrics = evaluate_pretraining(model, [batch])
    full = reference.prediction_logits[:, 2]
    assert metrics["eval_mlm_acc"] == pytest.approx(float((full.argmax(-1) == ids[:, 2]).float().mean()))
    assert metrics["eval_loss"] == pytest.approx(float(reference.loss.detach()), abs=1e-5)
    assert 0.0 <= float(stats["nsp_acc"]) <= 1.0


def test_prefetch_threads_change_nothing():
    plain, prefetched = make(max_steps=6), make(max_steps=6, num_workers=2)
    plain.train(), prefetched.train()
    for (name, a), (_, b) in zip(plain.model.named_parameters(), prefetched.model.named_parameters()):
        assert torch.equal(a, b), name
