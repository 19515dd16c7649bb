"""Dense (time-stepped) mode: time-major arrays (T, B, ...), discrete neurons and the rules
that need every step. See docs/dense.md."""
from .forward import run
from .neurons import AntlrNeuron, ZhuNeuron
from .record import DenseGrads, DenseRecord

__all__ = ["run", "ZhuNeuron", "AntlrNeuron", "DenseRecord", "DenseGrads"]
