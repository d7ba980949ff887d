"""Sphinx configuration for the nbspawner documentation (MyST Markdown)."""

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
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"nbspawner {version}"
suppress_warnings = ["myst.xref_missing"] if False else []
