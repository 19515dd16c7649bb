"""A fused multiply-add for numba kernels: ``fma(x, y, z)`` = x y + z rounded once.

LLVM's ``llvm.fma.f64`` intrinsic: one instruction on CPUs with FMA (and a correctly rounded
library call elsewhere), and it vectorises. Unlike ``fastmath`` contraction it is explicit,
so a kernel and the replay that must reproduce its sums bit for bit (the Dense window
kernel) round in exactly the same places.
"""
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, x, y, z):
    """x * y + z with a single rounding (float64)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        args = [context.cast(builder, a, t, types.float64)
                for a, t in zip(args, signature.args)]
        fn = builder.module.declare_intrinsic("llvm.fma", [ir.DoubleType()] * 3)
        return builder.call(fn, args)

    return sig, codegen
