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
# a wider page than alabaster's 940 px (a 920 px content column at 1200 px and up; below that
# the layout is fluid), so that tables and code fit at 1280 px; _static/nbspawner.css makes the
# rest wrap or scroll inside itself (tests/integration/test_docs_layout.py checks every page)
html_theme_options = {"page_width": "1200px", "body_max_width": "none"}
# _static/: nbspawner.css and the screenshots the end-to-end tests write
html_static_path = ["_static"]
html_css_files = ["nbspawner.css"]
html_title = f"nbspawner {version}"
