"""``fastcnn serve``: a local page to draw a character on (or drop a picture of one) and see
the model's top classes and the feature maps of every convolution.

    from fastcnn.serve import create_app, BackgroundServer
    with BackgroundServer(create_app(model)) as server:
        print(server.url)

Needs the ``serve`` extra (FastAPI and uvicorn): ``pip install 'fastcnn[serve]'``.
"""

from .app import create_app, model_classes
from .classifier import MAX_UPLOAD_BYTES, Classifier
from .server import BackgroundServer, bind, run

__all__ = ["create_app", "model_classes", "Classifier", "MAX_UPLOAD_BYTES", "BackgroundServer",
           "bind", "run"]
