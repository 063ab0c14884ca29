"""Training objectives: BERT's masked-LM + next-sentence loss and its held-out evaluation.

The batches come from :class:`fnet.data.pretraining.PretrainingBatches`: (b, n) ``input_ids``,
``token_type_ids``, ``attention_mask``, ``labels`` (-100 where nothing is predicted) and (b,)
``next_sentence_label`` (1 = B is a random segment).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def pretraining_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]):
    """MLM + NSP loss of a batch (vocabulary projection on masked positions only) and the
    batch's MLM and NSP accuracies; the ``loss_fn`` of :class:`fnet.training.loop.Trainer`."""
    out = model(**batch, only_masked_logits=True)
    with torch.no_grad():
        labels = batch["labels"].reshape(-1)
        target = labels[labels != -100]  # (m,) in the order of prediction_logits
        mlm_acc = (out.prediction_logits.argmax(-1) == target).float().mean()
        nsp_acc = (out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"].reshape(-1)).float().mean()
    return out.loss, {"mlm_acc": mlm_acc, "nsp_acc": nsp_acc}


@torch.no_grad()
def evaluate_pretraining(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                         device: torch.device | str = "cpu") -> dict[str, float]:
    """Held-out MLM loss/accuracy (over all masked tokens), NSP loss/accuracy (over all pairs);
    ``eval_loss`` = MLM loss + NSP loss, comparable with the training loss."""
    import torch.nn.functional as F

    mlm_loss = mlm_correct = mlm_count = nsp_loss = nsp_correct = nsp_count = 0.0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch, only_masked_logits=True)
        labels = batch["labels"].reshape(-1)
        target = labels[labels != -100]
        logits = out.prediction_logits.float()
        mlm_loss += float(F.cross_entropy(logits, target, reduction="sum"))
        mlm_correct += float((logits.argmax(-1) == target).sum())
        mlm_count += target.numel()
        nsp_target = batch["next_sentence_label"].reshape(-1)
        nsp_logits = out.seq_relationship_logits.float()
        nsp_loss += float(F.cross_entropy(nsp_logits, nsp_target, reduction="sum"))
        nsp_correct += float((nsp_logits.argmax(-1) == nsp_target).sum())
        nsp_count += nsp_target.numel()
    if not nsp_count:
        raise ValueError("no evaluation batches")
    mlm_loss /= max(mlm_count, 1)
    nsp_loss /= nsp_count
    return {"eval_loss": mlm_loss + nsp_loss, "eval_mlm_loss": mlm_loss, "eval_mlm_acc": mlm_correct / max(mlm_count, 1),
            "eval_nsp_loss": nsp_loss, "eval_nsp_acc": nsp_correct / nsp_count, "eval_pairs": nsp_count}
