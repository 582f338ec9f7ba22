"""Least privilege proven by the calls: every AWS call a function makes in the handler tests,
evaluated against that function's role as template.yaml builds it (docs/design.md, "IAM")."""
