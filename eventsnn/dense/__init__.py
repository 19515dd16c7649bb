"""Dense (time-stepped) mode: time-major arrays (T, B, ...), discrete neurons and the rules
that need every step. See docs/dense.md."""
from .forward import run
from .init import init_firing_rate
from .neurons import AntlrNeuron, ZhuNeuron
from .record import DenseGrads, DenseRecord

__all__ = ["run", "init_firing_rate", "ZhuNeuron", "AntlrNeuron", "DenseRecord", "DenseGrads"]
