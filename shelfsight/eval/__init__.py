"""`shelfsight eval`: ask a suite of shelf questions with known answers and score the answers.

A suite is a folder holding `cases.json` and the pictures or recorded sessions it names
(`cases`); each case goes through the same pipeline as `run` / `ask` (`runner`), and its
answer's transcript is scored (`score`) into a table and totals (`report`). The bundled suite
lives in `suites/shelf` (made by `python -m scripts.make_eval_suite`).
"""
