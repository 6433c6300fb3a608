"""`seglab serve`: a local web page to annotate images with a promptable model (clicks, boxes) and save
the masks where `seglab train` reads them; semantic / instance checkpoints show their predictions.

mode.py (the mode: load the model, print the URL, run uvicorn), app.py (routes), engines.py (what
`model=` gives the page), session.py (one image: predictor, objects, prompts, undo), uploads.py
(size / type limits, decoding), masks.py (PNG, RLE, overlays), saving.py (the instance folder +
COCO JSON), static/ (the page: plain HTML + JS, no build step). FastAPI and uvicorn are imported
only when the mode runs (`pip install 'seglab[serve]'`).
"""
