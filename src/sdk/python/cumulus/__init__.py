"""Cumulus: run Python functions and commands on shared remote GPUs.

Importing this package has no side effects; the job-container runtime is
``python3 -m cumulus.runtime`` (see :mod:`cumulus.runtime`).
"""

__all__ = ["__version__"]

#: Version of the ``cumulus`` Python package.
__version__ = "0.1.0"
