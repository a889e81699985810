"""Tasks: the one door between techniques and data (see ``tasks.base``)."""

from .base import PARTS, Task, TaskResult
from .classification import Classification, ImageClassification, as_task

__all__ = ["PARTS", "Classification", "ImageClassification", "Task", "TaskResult", "as_task"]
