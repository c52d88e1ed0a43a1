"""trialstruct: clinical-trial eligibility criteria to validated, source-grounded JSON.

Stages, in the order data flows: ingest -> segment -> extract -> ground -> cache -> evaluate -> review.
"""

__version__ = "0.1.0"
