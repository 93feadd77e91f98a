"""`memscan audit`: find what a model memorized from an indexed corpus, forget it per
sequence, and prove it.

- `prompts`: seeded corpus windows (prompt + true continuation), drawn from the index.
- `find`: generate from them and match the generations against the index, in resumable parts.
- `regions`: memorized generations -> deduplicated, ranked regions: the forget set.
- `verify`: which regions a model still reproduces.
- `report`: report.md, plots, summary.json.
- `run`: the steps in order into one resumable folder.
"""

from memscan.experiment.audit.find import FindOptions
from memscan.experiment.audit.run import AuditInputs, AuditOptions, is_resumable, plan_audit, run_audit

__all__ = ["AuditInputs", "AuditOptions", "FindOptions", "is_resumable", "plan_audit", "run_audit"]
