"""Datasets (MNIST, Frey Faces), binarisation and input corruption.

Importing this package registers the loaders in ``DATASETS`` and the noises in ``NOISES``.
Where data files are looked for, and how they are checked and downloaded, is described in
:mod:`vaelab.data.sources`.
"""

from . import frey, mnist  # noqa: F401  (register the datasets)
from .dataset import DataInfo, Dataset, Split, binarize_dynamic, check_data, load_dataset
from .noise import corrupt
from .sources import resolve_data_dirs

__all__ = ["DataInfo", "Dataset", "Split", "binarize_dynamic", "check_data", "corrupt", "load_dataset",
           "resolve_data_dirs"]
