"""Every training recipe, by the name ``vlmkit train NAME`` takes. A new recipe is a module with one
``Recipe`` subclass and one line here."""

from vlmkit.training.recipes.align import AlignRecipe
from vlmkit.training.recipes.base import Recipe
from vlmkit.training.recipes.clip import ClipRecipe, SiglipRecipe
from vlmkit.training.recipes.distill import DistillRecipe
from vlmkit.training.recipes.distill_vlm import DistillVlmRecipe
from vlmkit.training.recipes.instruct import InstructRecipe
from vlmkit.training.recipes.lm import LmRecipe
from vlmkit.training.recipes.mae import MaeRecipe
from vlmkit.training.recipes.mask_vae import MaskVaeRecipe
from vlmkit.training.recipes.mlm import MlmRecipe
from vlmkit.training.recipes.t2i import T2IRecipe
from vlmkit.training.recipes.video import VideoRecipe

RECIPES: dict[str, type[Recipe]] = {
    recipe.name: recipe
    for recipe in (
        ClipRecipe,
        SiglipRecipe,
        LmRecipe,
        AlignRecipe,
        InstructRecipe,
        T2IRecipe,
        MaskVaeRecipe,
        MaeRecipe,
        VideoRecipe,
        DistillRecipe,
        DistillVlmRecipe,
        MlmRecipe,
    )
}

__all__ = [
    "RECIPES",
    "AlignRecipe",
    "ClipRecipe",
    "DistillRecipe",
    "DistillVlmRecipe",
    "InstructRecipe",
    "LmRecipe",
    "MaeRecipe",
    "MaskVaeRecipe",
    "MlmRecipe",
    "Recipe",
    "SiglipRecipe",
    "T2IRecipe",
    "VideoRecipe",
]
