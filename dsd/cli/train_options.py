"""The training options, declared once for `train-batch` and `sweep launch`."""

from __future__ import annotations

import functools
import inspect
import typing

import typer

# name: (type, typer option)
TRAIN_OPTIONS: dict[str, tuple[type, typer.models.OptionInfo]] = {
    "dataset": (str, typer.Option(None, "--dataset", help="Data set (default: the run's).")),
    "data_dir": (str, typer.Option(None, "--data-dir", help="Where the data set lives.")),
    "download": (bool, typer.Option(False, "--download", help="Fetch Fashion-MNIST via "
                                    "torchvision into --data-dir (needs internet).")),
    "epochs": (int, typer.Option(None, "--epochs", help="Epochs per model.")),
    "lr": (float, typer.Option(None, "--lr", help="Base learning rate.")),
    "wd": (float, typer.Option(None, "--wd", help="Weight decay.")),
    "batch_size": (int, typer.Option(None, "--batch-size", help="Training batch size.")),
    "momentum": (float, typer.Option(None, "--momentum", help="SGD momentum.")),
    "warmup_epochs": (float, typer.Option(None, "--warmup-epochs", help="Linear warmup epochs.")),
    "augment": (str, typer.Option(None, "--augment", help="flip-crop, none or inception.")),
    "precise_bn": (int, typer.Option(None, "--precise-bn", help="Training images for precise BN "
                                     "statistics before each evaluation (0 = off).")),
    "zero_init_final_gamma": (bool, typer.Option(
        None, "--zero-init-final-gamma/--no-zero-init-final-gamma",
        help="Zero the last BN gamma of every block.")),
    "train_subset": (int, typer.Option(None, "--train-subset", help="Seeded stratified subset "
                                       "of K training images.")),
    "test_subset": (int, typer.Option(None, "--test-subset", help="Seeded stratified subset of "
                                      "K held-out images.")),
    "seed": (int, typer.Option(0, "--seed", help="Seed; with the model id it fixes init and "
                               "data order.")),
    "device": (str, typer.Option("auto", "--device", help="auto, cpu or cuda.")),
    "step": (str, typer.Option("eager", "--step", help="How each training step runs: eager; graph "
                               "(CUDA: the whole step captured once in a CUDA graph and replayed); "
                               "compile (torch.compile, compile time counted).")),
    "streams": (int, typer.Option(1, "--streams", help="Models each worker trains in turn, one step "
                                  "each (on a GPU, each on its own CUDA stream).")),
    "retry_failed": (bool, typer.Option(False, "--retry-failed", help="Train failed/oom models "
                                        "again.")),
    "lease": (float, typer.Option(300.0, "--lease", help="Seconds after which another host's "
                                  "silent claim is taken over.")),
}
RECIPE_KEYS = ("epochs", "lr", "wd", "batch_size", "momentum", "warmup_epochs", "augment",
               "precise_bn", "zero_init_final_gamma", "train_subset", "test_subset")


def with_train_options(fn):
    """Add the training options to a command; it receives them as one dict `train`."""
    hints = typing.get_type_hints(fn)
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(fn).parameters.values() if p.name != "train"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=typ)
             for name, (typ, opt) in TRAIN_OPTIONS.items()]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        train = {k: kwargs.pop(k) for k in TRAIN_OPTIONS if k in kwargs}
        return fn(*args, train=train, **kwargs)

    params = own + extra
    wrapper.__signature__ = inspect.Signature(params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # typer must see the new signature, not fn's
    return wrapper


def recipe_overrides(train: dict) -> dict:
    return {k: v for k, v in train.items() if k in RECIPE_KEYS}


def train_request(train: dict, **extra):
    """The options as the library's TrainRequest."""
    from dsd.train.setup import TrainRequest

    return TrainRequest(dataset=train["dataset"], data_dir=train["data_dir"], download=train["download"],
                        overrides=recipe_overrides(train), seed=train["seed"], device=train["device"],
                        retry_failed=train["retry_failed"], lease=train["lease"], step=train["step"],
                        streams=train["streams"], **extra)
