"""Review page: run records shown next to their source, diffed against gold and another run.

`page.py` builds the self-contained HTML, `diff.py` compares records (through the scorer's
`match_spans`), `server.py` serves the page with editing and saves reviewed records as gold.
"""
