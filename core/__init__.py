"""The studio's engine: data, model catalog, strategies, training, jobs and inference.

Nothing in this package imports gradio; the UI lives in ``studio/``.
"""

import logging as _logging

# bitsandbytes tries to fetch an optional CPU kernel from the Hub at import and warns when it can't; training
# works without it (measured), so the warning only misleads people on a CPU or offline.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
