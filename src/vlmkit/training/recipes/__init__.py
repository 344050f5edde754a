"""Recipes: a model, its data and its loss as a ``TrainTask`` for the shared trainer."""
