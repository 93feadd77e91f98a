"""What the command line offers before any model is loaded (so it needs no torch): the
default model and the scores g may be."""

DEFAULT_MODEL = "smollm2-135m"
G_SCORES = ("ma", "el", "extraction_strength", "ma_dpd")  # ma_dpd: MA expected under the papers' DPD
# What `memorization` can also count c(D_f) of: EL_n sampled under DPD (too costly and
# too noisy to steer unlearning by: a full generation per prefix, one draw each).
MEASURED_SCORES = (*G_SCORES, "el_dpd")
