"""tessera-core 0.1.0's TBF module (tessera/binary.py), loaded without its package initialiser
(which imports PyTorch; only its logging helper is replaced) and under the package name
``tessera_core``, so that it never shadows this project's own ``tessera`` package.

tessera-core is installed apart from everything else (``pip install --no-deps --target DIR
tessera-core==0.1.0``, as .ci/run does); ``TESSERA_CORE_PATH`` names DIR.
"""

import importlib
import logging
import os
import sys
import types
from pathlib import Path


def load_binary_module():
    """The ``binary`` module of the tessera-core found under ``$TESSERA_CORE_PATH``."""
    location = os.environ.get("TESSERA_CORE_PATH")
    if not location or not (Path(location) / "tessera" / "binary.py").is_file():
        sys.exit(
            "tessera-core is not found: pip install --no-deps --target DIR tessera-core==0.1.0 "
            "and set TESSERA_CORE_PATH=DIR"
        )
    package = types.ModuleType("tessera_core")
    package.__path__ = [str(Path(location) / "tessera")]
    sys.modules["tessera_core"] = package
    utils = types.ModuleType("tessera_core.utils")
    utils.setup_logging = logging.getLogger
    sys.modules["tessera_core.utils"] = utils
    return importlib.import_module("tessera_core.binary")
