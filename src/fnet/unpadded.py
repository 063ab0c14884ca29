"""Unpadded inference, applied from outside the model: real tokens only, packed as (t, d).

Legend: b batch, n padded length, t real tokens in the batch (t <= b*n), d hidden size.

A padded batch spends the embeddings, every feed-forward layer (two thirds of FNet's FLOPs) and
every norm on its pads. Here the backbone (``FNetModel``) keeps only the real tokens: the
embeddings, the feed-forward sublayers and their norms run on a packed (1, t, d) tensor, and the
token mixer alone sees the padded (b, n, d) layout, with the padding mask, so each example is still
mixed over its own true length (``fourier.py``: per-example DFT of length L_i). The pooler reads
each example's first token; ``last_hidden_state`` is scattered back to (b, n, d) with zeros at the
pads, so the task heads run unchanged. Real-token outputs equal the padded path to float32 rounding
(tests/model/test_unpadded.py).

``fnet.optimize_for_inference(model)`` swaps every ``FNetModel`` inside a model for
:class:`UnpaddedFNetModel` (the class changes; parameters, buffers and keys stay). Its ``forward``
takes the packed route only when all of these hold, and otherwise runs the reference forward:

* eval mode, autograd off;
* an ``attention_mask`` with at least one pad, right-padded (every row's tokens come first), and
  at least one real token in every row (the pooler reads each row's first one);
* ``input_ids`` given (not ``inputs_embeds``), no ``position_ids``, no ``output_hidden_states``;
* not tracing, compiling or exporting.
"""

from __future__ import annotations

import torch

from fnet.modeling import FNetModel, FNetModelOutput, _is_exporting

__all__ = ["UnpaddedFNetModel", "Packing", "unpad"]


class Packing:
    """Where the real tokens of a right-padded (b, n) batch sit, and the moves between layouts."""

    def __init__(self, attention_mask: torch.Tensor):
        self.mask = attention_mask  # (b, n), as given: the mixers read it
        self.b, self.n = attention_mask.shape
        keep = attention_mask.reshape(-1) != 0  # (b*n,)
        self.index = keep.nonzero(as_tuple=True)[0]  # (t,): flat positions of the real tokens
        self.lengths = (attention_mask != 0).sum(dim=1)  # (b,)
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths  # (b,): each row's first packed token

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(b, n, ...) -> (1, t, ...)."""
        return x.reshape(self.b * self.n, *x.shape[2:]).index_select(0, self.index)[None]

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """(1, t, d) -> (b, n, d), zeros at the pads."""
        out = x.new_zeros(self.b * self.n, x.shape[-1])
        out.index_copy_(0, self.index, x[0])
        return out.view(self.b, self.n, -1)


def _right_padded(mask: torch.Tensor) -> bool:
    lengths = (mask != 0).sum(dim=1, keepdim=True)  # (b, 1)
    return bool(((mask != 0) == (torch.arange(mask.shape[1], device=mask.device) < lengths)).all())


class UnpaddedFNetModel(FNetModel):
    """``FNetModel`` whose inference forward runs on the real tokens only (see the module docstring)."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, output_hidden_states=None, return_dict=None, output_attentions=None):
        all_hidden = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        if output_attentions or not self._packable(input_ids, attention_mask, position_ids, inputs_embeds, all_hidden):
            return super().forward(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                                   output_hidden_states, return_dict, output_attentions)
        self._check_inputs(input_ids, None, token_type_ids, None, attention_mask)
        packing = Packing(attention_mask)
        positions = torch.arange(packing.n, device=input_ids.device).expand(packing.b, -1)  # (b, n)
        hidden = self.embeddings(
            packing.pack(input_ids), None if token_type_ids is None else packing.pack(token_type_ids),
            packing.pack(positions),
        )  # (1, t, d)
        encoder = self.encoder
        for index in range(encoder.depth):
            layer = encoder.layer[index % len(encoder.layer)]
            # the mixer alone needs each example whole: padded layout, mask, per-example length
            mixed = packing.pack(layer.mixing_sublayer(packing.unpack(hidden), attention_mask))  # (1, t, d)
            hidden = layer.feed_forward(mixed)  # (1, t, d)
        if encoder.final_norm is not None:
            hidden = encoder.final_norm(hidden)
        pooled = self.pooler(hidden[0, packing.starts][:, None]) if self.pooler is not None else None  # (b, d)
        out = FNetModelOutput(last_hidden_state=packing.unpack(hidden), pooler_output=pooled, hidden_states=None)
        return self._finish(out, return_dict)

    def _packable(self, input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states) -> bool:
        if (self.training or torch.is_grad_enabled() or input_ids is None or inputs_embeds is not None
                or position_ids is not None or output_hidden_states or attention_mask is None
                or not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2
                or attention_mask.shape != input_ids.shape or _is_exporting()):
            return False
        real = attention_mask != 0  # (b, n)
        return bool((~real).any()) and bool(real[:, 0].all()) and _right_padded(attention_mask)


def unpad(model: torch.nn.Module) -> torch.nn.Module:
    """Swap every ``FNetModel`` in ``model`` for :class:`UnpaddedFNetModel` (in place); returns ``model``."""
    for module in model.modules():
        if type(module) is FNetModel:
            module.__class__ = UnpaddedFNetModel
    return model
