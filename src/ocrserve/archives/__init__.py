"""Model archives: the ``.mar`` format, the model store, the bundled archives, and loading.

- `ocrserve.archives.mar`: read, write and validate ``.mar`` files (nothing in them runs);
- `ocrserve.archives.store`: the model store folder and what the server loads from it;
- `ocrserve.archives.bundled`: the bundled PP-OCR models written as archives;
- `ocrserve.archives.spec`: `ModelSpec`, what the engine knows of a model before loading it;
- `ocrserve.archives.loader`: `load_predictor`, an extracted archive -> a `Predictor`.
"""
