"""``ocrserve compare``: a model run locally and the same model served, image by image.

- `ocrserve.compare.runner`: the command (local and served predictions, the table, the report);
- `ocrserve.compare.matching`: matching instances one to one and judging agreement;
- `ocrserve.compare.pictures`: the side-by-side pictures and the HTML report.
"""
