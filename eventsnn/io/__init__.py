"""Event files: read event-camera and audio recordings into :class:`Recording` objects.

Every reader returns a :class:`~eventsnn.io.recording.Recording`: a structured array of
events (t in microseconds, x, y, p; or t, x, p for 1-D sensors such as a cochlea), the
sensor size in tonic's convention ``(W, H, P)``, the format name, and what the reader
dropped (``recording.dropped``: a dict reason -> number of events, empty when nothing was
lost; ``recording.notes``: what else it skipped, e.g. IMU packets). A recording becomes a
:class:`eventsnn.SpikeTrains` with :meth:`Recording.to_spike_trains`.

- :func:`read`: any supported file, format from its content and extension;
- :func:`read_bin`: 40-bit N-MNIST ``.bin`` / SLAYER ``.bs2`` files (any sensor up to
  256 x 256), :func:`read_nmnist` (34 x 34) and :func:`read_dvs_gesture` (DVS128 clips,
  128 x 128) on top of it;
- :func:`read_aedat4`: iniVation AEDAT 4.0 files through the ``aedat`` package
  (``pip install eventsnn[aedat]``);
- :func:`read_aedat2`: jAER AEDAT 1.0 / 2.0 files of DVS128 and DAVIS240/346 cameras;
- :func:`from_tonic` / :func:`to_tonic`: tonic-style structured arrays, 2-D (t, x, y, p)
  and 1-D audio (t, x, p), with tonic's ``sensor_size`` (W, H, P);
- :func:`read_idx`: MNIST's IDX arrays (e.g. ``mnist_t10k``, plain or gzipped).
"""
from .aedat2 import read_aedat2
from .aedat4 import read_aedat4
from .binary import read_bin, read_dvs_gesture, read_nmnist, write_bin
from .recording import EVENT_DTYPE, EVENT_DTYPE_1D, Recording
from .tonic import from_tonic, to_tonic
from .detect import read
from .idx import read_idx

__all__ = ["Recording", "EVENT_DTYPE", "EVENT_DTYPE_1D", "read", "read_bin", "read_nmnist",
           "read_dvs_gesture", "write_bin", "read_aedat4", "read_aedat2", "from_tonic", "to_tonic", "read_idx"]
