"""proformer: train, evaluate and apply Proformer models on DNA sequence-to-number data.

The package is split along the way a sequence travels: :mod:`proformer.sequence` (strings to
codes and the DREAM layout), :mod:`proformer.model` (the network), and the command line in
:mod:`proformer.cli`. Importing ``proformer`` itself stays light; submodules load on use.
"""

__version__ = "0.1.0"
