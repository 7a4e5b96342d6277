"""The review gallery: one static page per story (`page.py`, a free build target) and the local server (`serve.py`)."""
