"""Studies as data: a TOML study file (`spec`), its comparisons and verdicts (`findings`), its
figures, HTML report and FINDINGS.md (`report`), and re-training published models (`verify`)."""
