"""Network families: one module per generator family."""

from .stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig

__all__ = ["Discriminator", "DiscriminatorConfig", "Generator", "GeneratorConfig", "MappingConfig", "SynthesisConfig"]
