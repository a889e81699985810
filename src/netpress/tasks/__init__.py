"""Tasks: the one door between techniques and data (see ``tasks.base``)."""

from .base import PARTS, SCORE_LABELS, Task, TaskResult, score_label
from .classification import Classification, ImageClassification, as_task

__all__ = ["PARTS", "SCORE_LABELS", "Classification", "ImageClassification", "Task", "TaskResult",
           "as_task", "score_label"]
