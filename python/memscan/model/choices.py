"""What the command line offers before any model is loaded (so it needs no torch): the
default model and the scores g may be."""

DEFAULT_MODEL = "smollm2-135m"
G_SCORES = ("ma", "el", "extraction_strength", "ma_dpd")  # ma_dpd: MA expected under the papers' DPD
