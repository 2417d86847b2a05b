"""FLOPs of any PyTorch code, counted over the aten ops it dispatches.

``torch.utils.flop_counter.FlopCounterMode`` tracks modules with hooks that break ``autograd.grad`` (the
penalty's double backward), so this mode counts without them: every aten op that reaches the dispatcher
(forward, backward and double backward alike) is looked up in PyTorch's own per-op formulas
(``flop_registry``: mm, addmm, bmm, convolution and their backwards, attention). Elementwise ops count
zero, as in PyTorch's counter: the matrix work is what a peak rate is quoted for.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

__all__ = ["AtenFlopCounter"]


class AtenFlopCounter(TorchDispatchMode):
    """``with AtenFlopCounter() as flops: step()`` then ``flops.total`` (and ``flops.by_op``).

    >>> import torch
    >>> with AtenFlopCounter() as counter:
    ...     _ = torch.randn(4, 8) @ torch.randn(8, 3)
    >>> counter.total  # 2·4·8·3
    192
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.by_op: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            count = int(formula(*args, **kwargs, out_val=out))
            self.total += count
            self.by_op[str(func._overloadpacket)] += count
        return out
