"""What the LLM backends share, in four parts read in this order:

- `prompt`: the versioned prompt, the criteria a request carries, batching;
- `answer`: the compact answer schema the model fills, and salvaging a cut-off answer;
- `usage`: the meter that counts tokens, calls and retries and enforces budget and deadline;
- `backend`: the extraction loop (cache, instructor call, targeted re-asks, cut-offs).

Grounding, placing the model's words in the source, is `pipeline.ground`.
"""

from pipeline.extract.llm.answer import constrained_format
from pipeline.extract.llm.backend import CODE_VERSION, LLMBackend
from pipeline.extract.llm.prompt import load_prompt
from pipeline.extract.llm.usage import CallDeferred, DeadlineExceeded, ExtractionError, Meter, TokenBudgetExceeded

__all__ = [
    "CODE_VERSION", "CallDeferred", "DeadlineExceeded", "ExtractionError", "LLMBackend", "Meter", "TokenBudgetExceeded",
    "constrained_format", "load_prompt",
]
