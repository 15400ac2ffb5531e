"""Publishing results (no Dagster): the results site (deep-zoom pyramids + OpenSeadragon), the survey kit and its
scorer. See ``site.py``, ``deepzoom.py``, ``survey.py``; ``publish.py`` swaps a finished folder into place."""
