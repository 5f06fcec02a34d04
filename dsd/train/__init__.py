"""Training: batches on the device (`pipeline`), one model's whole loop (`loop`), its steps
(`step`), models stepped in turn (`streams`), claims that let many workers share a run
(`claims`), what a failure means for a worker (`faults`), a job per run and the batch's
options (`jobs`, checked by `setup`), one model of a run trained (`one`), and
`train-batch` itself (`batch`)."""
