"""The web viewer and service behind `mu2 serve`: a FastAPI app and one static page.

``create_app(model_dir)`` loads the model once and serves the JSON API and the viewer;
see :mod:`mu2.web.app`. The library never imports this package.
"""

from mu2.web.app import create_app
from mu2.web.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
