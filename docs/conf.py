"""Sphinx configuration for the nbspawner documentation (MyST Markdown).

Build with warnings as errors, as CI does:  sphinx-build -W -b html docs docs/_build/html
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

from nbspawner import __version__  # noqa: E402

project = "nbspawner"
author = "nbspawner contributors"
copyright = "2026, nbspawner contributors"
version = release = __version__

extensions = ["myst_parser", "nbspawner_reference"]
if importlib.util.find_spec("sphinx_copybutton"):
    extensions.append("sphinx_copybutton")
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
root_doc = "index"
# _generated/: snippets other pages include (benchmark tables...), not pages of their own
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/_generated"]
html_theme = "alabaster"
# _static/ holds the screenshots of the end-to-end tests; it may not exist in a fresh checkout
html_static_path = ["_static"] if (HERE / "_static").is_dir() else []
html_title = f"nbspawner {version}"
