"""`kerasml try`: a local web page to draw on (or photograph for) a Core ML image classifier.

The page is static (`static/`: HTML, CSS and vanilla JavaScript, nothing loaded from the internet);
the server (`app.py`, FastAPI) only adapts HTTP to kerasml's own functions: the stroke rasterisation
and MNIST-style preparation of `kerasml.preprocess` (the algorithm DigitKit shares), the NumPy Core
ML runtime, and the confidence policy of the iOS app (`reading.py`). So what the page shows is what
the app would read for the same strokes.

    reading.py     the app's policy: stroke raster, "no digit" prechecks, top-3 ranking, threshold
    photo.py       decoding an upload in memory and preparing it for the model
    classifier.py  the loaded model: card, drawing mode, one lock around the runtime
    work.py        the photo workers (one per core) and their bounded queue: 503 + Retry-After beyond it
    schemas.py     request and response shapes (pydantic)
    routes.py      the HTTP routes, grouped by concern
    app.py         the FastAPI app: routes, static files, body limit, error shapes
    server.py      checks before starting, then uvicorn and the browser
"""
