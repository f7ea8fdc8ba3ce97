"""proformer: train, evaluate and apply Proformer models on DNA sequence-to-number data.

The package follows the way a sequence travels, each step a function the CLI calls::

    from proformer.data.prepare import prepare      # file -> dataset directory
    from proformer.config import load_run_config    # preset/YAML + overrides -> RunConfig
    from proformer.train import train               # RunConfig -> run directory (best model)
    from proformer.predict import predict           # run directory + sequences -> predictions
    from proformer.score import score               # predictions -> official DREAM 2022 score

:mod:`proformer.sequence` holds the encoding and the DREAM layout, :mod:`proformer.model` the
network (torch only). ``import proformer`` itself loads nothing heavy.
"""

__version__ = "0.1.0"
