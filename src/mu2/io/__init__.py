"""Reading CT scans: NIfTI, DICOM (series folder or file) and NumPy, into one convention.

``load_ct(path)`` returns a :class:`CTVolume` whose ``array`` is float32 Hounsfield
units in canonical RAS orientation with axis order (x, y, z) = (R, A, S), the layout
nibabel's ``as_closest_canonical`` gives. ``.npy``/``.npz`` arrays carry no orientation:
they are read as (x, y, z) in RAS order, with 1 mm spacing unless an ``.npz`` holds a
``spacing`` entry. ``save_like`` writes a map on the canonical grid back with the source
file's affine and shape.
"""

from mu2.io.checks import DEFAULT_MAX_VOXELS, NotCTWarning, hu_warning
from mu2.io.load import SUPPORTED, load_ct
from mu2.io.volume import CANONICAL_ORIENTATION, CTVolume, orientation_code, save_like

__all__ = [
    "CANONICAL_ORIENTATION",
    "DEFAULT_MAX_VOXELS",
    "SUPPORTED",
    "CTVolume",
    "NotCTWarning",
    "hu_warning",
    "load_ct",
    "orientation_code",
    "save_like",
]
