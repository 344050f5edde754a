"""Hugging Face's ``hidden_act`` names and the vlmkit activation each one is.

Shared by every Hugging Face family converter (CLIP/SigLIP, Llama, LLaVA), so it sits apart from all
of them and from the dispatcher in ``hf`` that imports them.
"""

HF_ACTIVATIONS = {
    "quick_gelu": "quick_gelu",
    "gelu": "gelu",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_new": "gelu_tanh",
    "silu": "silu",
    "swish": "silu",
}
