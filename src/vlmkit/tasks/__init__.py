"""What users do with models: thin, model-agnostic functions over the Python API."""

from vlmkit.tasks.classify import Prediction, classify, label_embeddings
from vlmkit.tasks.embed import embed_images, embed_texts
from vlmkit.tasks.imagine import ImagineSettings, generate_images
from vlmkit.tasks.retrieve import Hit, image_to_text, retrieve, text_to_image

__all__ = [
    "Hit",
    "ImagineSettings",
    "Prediction",
    "classify",
    "embed_images",
    "embed_texts",
    "generate_images",
    "image_to_text",
    "label_embeddings",
    "retrieve",
    "text_to_image",
]
