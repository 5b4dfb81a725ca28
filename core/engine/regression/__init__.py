"""Regression recipes: a text or image model that returns a number (a price, a score, a count of birds).

They are the classifier recipes with another objective (``objective.Regression``): the same cached frozen features,
the same automatic search (``classify.auto``) over ridge and MLP heads and LoRA/full fine-tunes, the same run folder.
What differs is here: standardised targets folded back into the saved head, mean absolute error as the score, the
baselines (the training mean, ridge on TF-IDF or raw pixels, a ridge head on the base model's frozen features) and
the evaluation's predicted-against-true points and worst errors.
"""
