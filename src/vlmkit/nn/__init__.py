"""Building blocks shared by every tower: one attention, one transformer block, MLPs and norms."""

from vlmkit.nn.attention import Attention
from vlmkit.nn.block import TransformerBlock, TransformerStack
from vlmkit.nn.mlp import MLP, activation

__all__ = ["MLP", "Attention", "TransformerBlock", "TransformerStack", "activation"]
