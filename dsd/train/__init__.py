"""Training: batches on the device (`pipeline`), one model's whole loop (`loop`), claims that
let many workers share a run (`claims`), options checked into a `BatchConfig` (`setup`), and
`train-batch` itself (`batch`)."""
