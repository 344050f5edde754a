"""HTTP serving: OpenAI-compatible chat and embeddings, classification, search, and a web page.

``create_app(ServedModels(...), ServerLimits(...))`` builds the FastAPI app that ``vlmkit serve``
runs with uvicorn. Needs the ``serve`` extra (fastapi, uvicorn).
"""

from vlmkit.serving.app import create_app
from vlmkit.serving.limits import ServerLimits
from vlmkit.serving.state import ServedModels

__all__ = ["ServedModels", "ServerLimits", "create_app"]
