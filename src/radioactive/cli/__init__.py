"""Command-line interface: ``radioactive --help``.

One module per command (``run``, ``report``, ``validate``, ``estimate``, ``ls``, ``replay``,
``migrate``, ``demo``) or command group (``datasets``, ``models``); they parse options, call the
library and print. Every command runs inside one error handler (:mod:`radioactive.cli._ui`): no raw
traceback reaches a user. Heavy modules (numpy, nibabel, SimpleITK) are imported inside the
commands so that ``--help`` stays fast.
"""

from __future__ import annotations

from radioactive.cli import (  # noqa: F401  (each module registers its commands)
    cvpr25,
    datasets,
    demo,
    estimate,
    ls,
    migrate,
    models,
    replay,
    report,
    run,
    validate,
)
from radioactive.cli._app import app, datasets_app, main, models_app
from radioactive.cli._ui import err, out

__all__ = ["app", "datasets_app", "err", "main", "models_app", "out"]
