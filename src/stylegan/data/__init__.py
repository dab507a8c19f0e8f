"""Datasets: the `stylegan dataset` converter and the training-data pipeline."""

from .common import DatasetError
from .dataset import DatasetInfo, ImageDataset
from .sampler import InfiniteSampler
from .tool import ConvertConfig, ConvertReport, convert_dataset

__all__ = ["ConvertConfig", "ConvertReport", "DatasetError", "DatasetInfo", "ImageDataset", "InfiniteSampler",
           "convert_dataset"]
