"""eventsnn: event-driven spiking neural networks with exact spike times, on the CPU."""
from .layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from .network import Sequential
from .neurons import LIF, SRM
from .nir import from_nir, to_nir
from .spikes import SpikeTrains

__version__ = "0.1.0"

__all__ = ["SpikeTrains", "SRM", "LIF", "to_nir", "from_nir", "Sequential", "Dense", "Conv2d", "MaxPool2d", "AvgPool2d",
           "Flatten", "__version__"]
