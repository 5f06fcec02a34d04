"""Notice when torch.compile stops compiling: dynamo's recompile limits.

Past `torch._dynamo.config.recompile_limit` variants of one code object, dynamo runs
that code eagerly from then on and says so once, as a logging warning ("torch._dynamo
hit config.recompile_limit (8)"). Nothing else tells the caller, so a result row would
say `compile` for a model that trained eagerly. This handler counts those warnings; a
step compares the count before and after each of its calls.
"""

from __future__ import annotations

import logging

PREFIX = "torch._dynamo hit config."


class LimitHits(logging.Handler):
    def __init__(self, logger: str = "torch._dynamo"):
        super().__init__(logging.WARNING)
        self.logger, self.count, self.last = logger, 0, ""

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith(PREFIX):
            self.count += 1
            self.last = msg.splitlines()[0]

    def install(self) -> None:
        """Listen from now on (once per process: a second install changes nothing)."""
        log = logging.getLogger(self.logger)
        if self not in log.handlers:
            log.addHandler(self)


LIMIT_HITS = LimitHits()
