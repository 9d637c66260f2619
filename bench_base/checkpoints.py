"""Let torch ≥ 2.6 load nerfstudio 1.1.5 checkpoints of our methods.

nerfstudio's schedulers return numpy floats, which land as numpy scalars in the optimizer and
scheduler state that every checkpoint holds. torch ≥ 2.6 loads with ``weights_only=True`` and
refuses them (nerfstudio issue #3683, unfixed in 1.1.5), so ``ns-eval``, ``ns-render`` and resume
fail on any method with a scheduler. Allowlisting the numpy scalar constructor and the *numeric*
dtypes keeps the safe loader (plain numbers, no code to run) and makes those checkpoints load.
"""

from __future__ import annotations

import numpy as np
import torch

NUMERIC_KINDS = ("Bool", "Int", "UInt", "Float", "Complex", "Byte", "UByte", "Short", "UShort", "Long", "ULong",
                 "LongLong", "ULongLong", "LongDouble", "CLongDouble", "Half")


def allow_numpy_scalars_in_checkpoints() -> None:
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core
    dtypes = [
        getattr(np.dtypes, name)
        for name in dir(np.dtypes)
        if name.endswith("DType") and name.startswith(NUMERIC_KINDS) and not name.startswith(("Bytes",))
    ]
    torch.serialization.add_safe_globals([core.multiarray.scalar, np.dtype, *dtypes])
