"""Executors run jobs somewhere (local processes now, Dask later) behind one interface."""

from .base import Completion, Executor, Job

__all__ = ["Completion", "Executor", "Job"]
