"""Results in and models out: other tools' formats."""
