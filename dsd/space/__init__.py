"""Design spaces as data: TOML space files (`spec`), pycls-style quantised distributions
(`distributions`), drawing distinct models under complexity windows (`sampler`), and writing
them into a run directory (`sample_run`). Pure numpy; no torch."""
