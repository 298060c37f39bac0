"""Canonicalisation of exporter output: one ONNX form for what torch and Hugging Face write.

:func:`canonicalize` runs between shape inference (with the user's static shapes) and lowering.
It works on onnx-ir with the onnxscript optimizer and rewriter, not a walker of its own:

1. **Constant folding** (``onnxscript.optimizer.optimize_ir``): with every input shape static,
   the Shape / ConstantOfShape / Cast / IsNaN / GatherElements / Range / Equal / Where / Expand
   chains exporters write for masks and position ids are computations on constants and fold
   away. onnxscript keeps ConstantOfShape unfolded by default (to keep files small) and skips
   inputs above 8192 elements; here ConstantOfShape is folded up to :data:`FOLD_LIMIT`
   elements and the input limit is raised to the same, so a causal-mask buffer (GPT-2 keeps a
   [1, 1, 1024, 1024] one) folds too. Weight tensors beyond the limit are left alone.
2. **Empty tensors** (zero-length constants are legal ONNX and exporters write them): every
   value whose static shape holds a 0 is replaced by an empty constant
   (:class:`FoldEmptyTensors`; an empty tensor has one possible value), after which the folding
   drops them (a Concat forgets its empty operands, a dead chain is removed).
3. **Opset**: the default-domain opset is raised to :data:`CANONICAL_OPSET` with onnxscript's
   version converter, so the fused ops below (Gelu: opset 20, RMSNormalization: opset 23) are
   valid and onnxruntime runs the canonical model. A model already above it is left as is.
4. **Fusion rules** (onnxscript pattern API, :data:`RULES`), applied with commuted variants:
   decomposed LayerNorm -> LayerNormalization; RMSNorm as HF Llama exports it ->
   RMSNormalization; GELU in erf and tanh form -> Gelu (approximate none / tanh);
   com.microsoft Gelu / FastGelu / BiasGelu -> Gelu; an element-wise scale and shift by a
   per-feature constant after a LayerNormalization / RMSNormalization fold into its scale and
   bias; the NaN guard torch's attention export puts after Softmax goes when every constant of
   the model is finite (:class:`SoftmaxNanGuard`), and on a dequantised value (after QDQ) always
   (:class:`DequantizedNanGuard`: a dequantised integer is finite).

Each rule keeps the numbers onnxruntime computes (tests/frontend/test_canonical.py runs every
rule's tiny model before and after). The result is a ModelProto for :func:`load_model` to
shape-infer again; the reference run of a compile still uses the user's original model.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common as common_passes
from onnxscript import rewriter, version_converter
from onnxscript.optimizer._constant_folding import FoldConstantsPass
from onnxscript.rewriter import RewritePass, _ir_utils, pattern

from codesign.errors import ModelError

#: Default-domain opset of every canonical model (RMSNormalization needs 23; onnxruntime 1.32
#: runs it).
CANONICAL_OPSET = 23

#: Largest tensor (elements) the constant folding reads or writes: masks and position tables of
#: sequences up to 1024, not weight matrices of real size.
FOLD_LIMIT = 1 << 20

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
#: Relative tolerance on the constants of a decomposed form (exporters write them as float32).
_RTOL = 1e-4

_FLOATS = frozenset({ir.DataType.FLOAT, ir.DataType.DOUBLE, ir.DataType.FLOAT16})


# -- helpers for the checks --------------------------------------------------------------------


def _scalar(v: ir.Value | None) -> float | None:
    """The value of a one-element constant, or None."""
    s = _ir_utils.get_singleton_value(v)
    return None if s is None else float(s)


def _near(v: ir.Value | None, want: float) -> bool:
    s = _scalar(v)
    return s is not None and math.isclose(s, want, rel_tol=_RTOL, abs_tol=1e-7)


def _rank(v: ir.Value) -> int | None:
    return None if v.shape is None else v.shape.rank()


def _reduces_last_axis(mean: ir.Value, x: ir.Value) -> bool:
    """``mean`` is a ReduceMean of ``x`` over its last axis only, keeping dims."""
    node = mean.producer()
    rank = _rank(x)
    if node is None or node.op_type != "ReduceMean" or rank is None or rank < 1:
        return False
    keep = node.attributes.get("keepdims")
    if keep is not None and keep.value != 1:
        return False
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = _ir_utils.get_numpy_value(node.inputs[1])
    else:
        a = node.attributes.get("axes")
        axes = None if a is None else np.asarray(a.value)
    if axes is None or axes.size != 1:
        return False
    return int(axes.reshape(-1)[0]) % rank == rank - 1


def _feature_vector(v: ir.Value | None, features: int) -> np.ndarray | None:
    """A constant that broadcasts along the last axis only: its values as a [features] vector."""
    arr = _ir_utils.get_numpy_value(v)
    if arr is None or arr.size not in (1, features):
        return None
    if arr.ndim and any(d != 1 for d in arr.shape[:-1]):
        return None
    return np.broadcast_to(arr.reshape(-1), (features,))


def _last_dim(x: ir.Value) -> int | None:
    if x.shape is None or x.shape.rank() < 1 or not isinstance(x.shape[-1], int):
        return None
    return int(x.shape[-1])


def _const(op, arr: np.ndarray, dtype: ir.DataType, name: str):
    """A new initializer ``name`` (derived from a value name of the match, so unique)."""
    return op.initializer(ir.tensor(np.ascontiguousarray(arr).astype(dtype.numpy()), name=name))


# -- normalisations ----------------------------------------------------------------------------


def _divided_or_scaled(op, d, var_eps, form: str):
    """d / sqrt(v): Div(d, Sqrt(v)) (``form`` "div"), or Mul(d, r) ("mul") with r written as
    Reciprocal(Sqrt(v)), Div(1, Sqrt(v)) or Pow(v, -0.5). (The pattern API cannot end a
    pattern in a choice, so the two forms are two rules.)"""
    if form == "div":
        return op.Div(d, op.Sqrt(var_eps))
    inv = pattern.OrValue(
        [
            op.Reciprocal(op.Sqrt(var_eps)),
            op.Div(pattern.Var("one"), op.Sqrt(var_eps)),
            op.Pow(var_eps, pattern.Var("minus_half")),
        ]
    )
    return op.Mul(d, inv)


def _check_one_and_half(one: ir.Value | None, minus_half: ir.Value | None) -> bool:
    return (one is None or _near(one, 1.0)) and (minus_half is None or _near(minus_half, -0.5))


class LayerNormFusion(pattern.RewriteRuleClassBase):
    """(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps), over the last axis ->
    LayerNormalization(x, ones, zeros, axis=-1, epsilon=eps). A following per-feature scale and
    shift fold in through :class:`NormScaleFusion` and :class:`NormBiasFusion`."""

    def __init__(self, form: str) -> None:
        super().__init__(f"LayerNormFusion_{form}")
        self._form = form

    def pattern(self, op, x, eps):
        mean = op.ReduceMean(x, _allow_other_inputs=True, _outputs=["mean"])
        d = op.Sub(x, mean)
        sq = pattern.OrValue([op.Pow(d, pattern.Var("two")), op.Mul(d, d)])
        var = op.ReduceMean(sq, _allow_other_inputs=True, _outputs=["var"])
        return _divided_or_scaled(op, d, op.Add(var, eps), self._form)

    def check(self, context, x, eps, mean, var, two=None, one=None, minus_half=None, **_):
        result = pattern.MatchResult()
        if x.dtype not in _FLOATS or _last_dim(x) is None:
            return result.fail("input must be a float tensor with a static last axis", x)
        if not (_reduces_last_axis(mean, x) and _reduces_last_axis(var, x)):
            return result.fail("both means must reduce the last axis only, keeping dims")
        if two is not None and not _near(two, 2.0):
            return result.fail("the square must be Pow(d, 2)", two)
        if _scalar(eps) is None or not _check_one_and_half(one, minus_half):
            return result.fail("epsilon and the reciprocal's constants must be scalars")
        return result

    def rewrite(self, op, x, eps, mean, **_):
        c = _last_dim(x)
        return op.LayerNormalization(
            x,
            _const(op, np.ones(c), x.dtype, f"{mean.name}__ln_scale"),
            _const(op, np.zeros(c), x.dtype, f"{mean.name}__ln_bias"),
            axis=-1,
            epsilon=_scalar(eps),
            stash_type=1,  # float32 statistics, as the decomposed float32 graph computes them
        )


class RmsNormFusion(pattern.RewriteRuleClassBase):
    """x / sqrt(mean(x^2) + eps) over the last axis (HF Llama's
    ``x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)``) ->
    RMSNormalization(x, ones, axis=-1, epsilon=eps); the weight folds in through
    :class:`NormScaleFusion`."""

    def __init__(self, form: str) -> None:
        super().__init__(f"RmsNormFusion_{form}")
        self._form = form

    def pattern(self, op, x, eps):
        sq = pattern.OrValue([op.Pow(x, pattern.Var("two")), op.Mul(x, x)])
        ms = op.ReduceMean(sq, _allow_other_inputs=True, _outputs=["ms"])
        return _divided_or_scaled(op, x, op.Add(ms, eps), self._form)

    def check(self, context, x, eps, ms, two=None, one=None, minus_half=None, **_):
        result = pattern.MatchResult()
        if x.dtype not in _FLOATS or _last_dim(x) is None:
            return result.fail("input must be a float tensor with a static last axis", x)
        if not _reduces_last_axis(ms, x):
            return result.fail("the mean must reduce the last axis only, keeping dims")
        if two is not None and not _near(two, 2.0):
            return result.fail("the square must be Pow(x, 2)", two)
        if _scalar(eps) is None or not _check_one_and_half(one, minus_half):
            return result.fail("epsilon and the reciprocal's constants must be scalars")
        return result

    def rewrite(self, op, x, eps, ms, **_):
        return op.RMSNormalization(
            x,
            _const(op, np.ones(_last_dim(x)), x.dtype, f"{ms.name}__rms_scale"),
            axis=-1,
            epsilon=_scalar(eps),
            stash_type=1,
        )


class NormScaleFusion(pattern.RewriteRuleClassBase):
    """Mul(LayerNormalization / RMSNormalization over the last axis, per-feature constant g)
    -> the normalisation with scale * g (and bias * g)."""

    def __init__(self, norm: str) -> None:
        super().__init__(f"{norm}ScaleFusion")
        self._norm = norm

    def pattern(self, op, x, scale, g):
        norm = getattr(op, self._norm)
        y = norm(x, scale, _allow_other_inputs=True, _outputs=["y"])
        return op.Mul(y, g)

    def check(self, context, x, scale, g, y, **_):
        return _check_affine(x, scale, g, y)

    def rewrite(self, op, x, scale, g, y, **_):
        node = y.producer()
        c = _last_dim(x)
        gv = _feature_vector(g, c)
        s = _ir_utils.get_numpy_value(scale) * gv
        ins = [x, _const(op, s, scale.dtype, f"{y.name}__scaled")]
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            b = _ir_utils.get_numpy_value(node.inputs[2]) * gv
            ins.append(_const(op, b, scale.dtype, f"{y.name}__scaled_bias"))
        return getattr(op, self._norm)(*ins, **_attrs(node))


class NormBiasFusion(pattern.RewriteRuleClassBase):
    """Add(LayerNormalization over the last axis, per-feature constant b) -> the
    LayerNormalization with bias + b."""

    def pattern(self, op, x, scale, b):
        y = op.LayerNormalization(x, scale, _allow_other_inputs=True, _outputs=["y"])
        return op.Add(y, b)

    def check(self, context, x, scale, b, y, **_):
        return _check_affine(x, scale, b, y)

    def rewrite(self, op, x, scale, b, y, **_):
        node = y.producer()
        c = _last_dim(x)
        bias = _feature_vector(b, c).astype(np.float64)
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            bias = bias + _ir_utils.get_numpy_value(node.inputs[2])
        b = _const(op, bias, scale.dtype, f"{y.name}__shifted")
        return op.LayerNormalization(x, scale, b, **_attrs(node))


def _check_affine(x, scale, k, y) -> pattern.MatchResult:
    result = pattern.MatchResult()
    node = y.producer()
    rank, c = _rank(x), _last_dim(x)
    axis = node.attributes.get("axis")
    axis = -1 if axis is None else axis.value
    if rank is None or c is None or axis % rank != rank - 1:
        return result.fail("the normalisation must be over the last axis", x)
    if len(node.outputs) > 1 and any(o.uses() for o in node.outputs[1:]):
        return result.fail("the normalisation's mean / inv_std_dev outputs are used")
    if _ir_utils.get_numpy_value(scale) is None or _feature_vector(k, c) is None:
        return result.fail("scale and the folded factor must be per-feature constants", k)
    if len(node.inputs) > 2 and _ir_utils.get_numpy_value(node.inputs[2]) is None:
        return result.fail("the bias must be a constant")
    if k.dtype != x.dtype or y.shape != (node.outputs[0].shape) or k.shape is None:
        return result.fail("types must agree")
    out = node.outputs[0]
    if out.shape is None or len(k.shape) > out.shape.rank():
        return result.fail("the factor must not broadcast the normalised tensor up", k)
    return result


def _attrs(node: ir.Node) -> dict:
    return {name: a.value for name, a in node.attributes.items()}


# -- GELU --------------------------------------------------------------------------------------


def _erf_term(op, x):
    """1 + erf(x / sqrt(2)), the division written as Div or as Mul by 1/sqrt(2)."""
    arg = pattern.OrValue([op.Div(x, pattern.Var("c_div")), op.Mul(x, pattern.Var("c_mul"))])
    return op.Add(op.Erf(arg), pattern.Var("one"))


def _tanh_term(op, x):
    """1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)), the cube as Pow(x, 3) or x * x * x."""
    cube = pattern.OrValue([op.Pow(x, pattern.Var("three")), op.Mul(op.Mul(x, x), x)])
    inner = op.Add(x, op.Mul(cube, pattern.Var("k")))
    return op.Add(op.Tanh(op.Mul(inner, pattern.Var("s"))), pattern.Var("one"))


def _half_x_times(op, x, term, order: int):
    """0.5 * x * term in association ``order`` 0: (x * 0.5) * term, 1: (x * term) * 0.5,
    2: x * (term * 0.5) (one rule each: a pattern cannot end in a choice)."""
    half = pattern.Var("half")
    if order == 0:
        return op.Mul(op.Mul(x, half), term)
    if order == 1:
        return op.Mul(op.Mul(x, term), half)
    return op.Mul(x, op.Mul(term, half))


class GeluErfFusion(pattern.RewriteRuleClassBase):
    """0.5 * x * (1 + erf(x / sqrt(2))) -> Gelu(x) (opset 20, approximate "none")."""

    def __init__(self, order: int) -> None:
        super().__init__(f"GeluErfFusion_{order}")
        self._order = order

    def pattern(self, op, x):
        return _half_x_times(op, x, _erf_term(op, x), self._order)

    def check(self, context, x, half, one, c_div=None, c_mul=None, **_):
        result = pattern.MatchResult()
        if x.dtype not in _FLOATS:
            return result.fail("input must be a float tensor", x)
        ok_arg = _near(c_div, _SQRT2) if c_div is not None else _near(c_mul, 1 / _SQRT2)
        if not (ok_arg and _near(half, 0.5) and _near(one, 1.0)):
            return result.fail("constants must be 1/sqrt(2), 1 and 0.5")
        return result

    def rewrite(self, op, x, **_):
        return op.Gelu(x, approximate="none")


class GeluTanhFusion(pattern.RewriteRuleClassBase):
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) -> Gelu(x, approximate="tanh")."""

    def __init__(self, order: int) -> None:
        super().__init__(f"GeluTanhFusion_{order}")
        self._order = order

    def pattern(self, op, x):
        return _half_x_times(op, x, _tanh_term(op, x), self._order)

    def check(self, context, x, half, one, k, s, three=None, **_):
        result = pattern.MatchResult()
        if x.dtype not in _FLOATS:
            return result.fail("input must be a float tensor", x)
        if three is not None and not _near(three, 3.0):
            return result.fail("the cube must be Pow(x, 3)", three)
        if not (
            _near(half, 0.5)
            and _near(one, 1.0)
            and _near(k, 0.044715)
            and _near(s, _SQRT_2_OVER_PI)
        ):
            return result.fail("constants must be 0.5, 1, 0.044715 and sqrt(2/pi)")
        return result

    def rewrite(self, op, x, **_):
        return op.Gelu(x, approximate="tanh")


class MicrosoftGelu(pattern.RewriteRuleClassBase):
    """com.microsoft Gelu(x) -> Gelu(x); com.microsoft BiasGelu(x, b) -> Gelu(x + b)."""

    def __init__(self, op_type: str) -> None:
        super().__init__(f"Microsoft{op_type}")
        self._op_type = op_type

    def pattern(self, op, x):
        return getattr(op, self._op_type)(x, _allow_other_inputs=True, _domain="com.microsoft")

    def rewrite(self, op, x, **_):
        return op.Gelu(x, approximate="none")


class MicrosoftBiasGelu(pattern.RewriteRuleClassBase):
    """com.microsoft BiasGelu(x, b) -> Gelu(x + b); FastGelu(x[, b]) -> Gelu(x [+ b], tanh)
    (onnxruntime's FastGelu is the tanh approximation)."""

    def __init__(self, op_type: str, approximate: str) -> None:
        super().__init__(f"Microsoft{op_type}")
        self._op_type = op_type
        self._approximate = approximate

    def pattern(self, op, x, b):
        return getattr(op, self._op_type)(x, b, _domain="com.microsoft")

    def rewrite(self, op, x, b, **_):
        return op.Gelu(op.Add(x, b), approximate=self._approximate)


class MicrosoftFastGelu(pattern.RewriteRuleClassBase):
    """com.microsoft FastGelu(x) without bias -> Gelu(x, approximate="tanh")."""

    def pattern(self, op, x):
        return op.FastGelu(x, _domain="com.microsoft")

    def rewrite(self, op, x, **_):
        return op.Gelu(x, approximate="tanh")


class SoftmaxNanGuard(pattern.RewriteRuleClassBase):
    """Where(IsNaN(Softmax(x)), 0, Softmax(x)) -> Softmax(x).

    torch's scaled_dot_product_attention export guards fully masked rows this way: a row of
    Softmax is NaN only when its inputs are all -inf (or hold a NaN or +inf). The rule is used
    only on a model whose float constants are all finite (:func:`_all_constants_finite`; codesign
    refuses non-finite constants anyway), where the scores of a row can be -inf only by float
    overflow, so the guard never changes a value of a finite input."""

    def pattern(self, op, x, zero):
        s = op.Softmax(x, _outputs=["s"])
        return op.Where(op.IsNaN(s), zero, s)

    def check(self, context, x, zero, s, **_):
        result = pattern.MatchResult()
        if not _near(zero, 0.0):
            return result.fail("the guard must replace NaN by 0", zero)
        return result

    def rewrite(self, op, x, zero, s, **_):
        return op.Softmax(x, **_attrs(s.producer()))


class DequantizedNanGuard(pattern.RewriteRuleClassBase):
    """Where(IsNaN(d), c, d) -> d, for d = DequantizeLinear(q, scale, zp) with a constant
    scale and a one-element constant c.

    quantize_static puts QDQ between Softmax and torch's NaN guard, so
    :class:`SoftmaxNanGuard` no longer matches. A dequantised integer, (q - zp) * scale, is
    finite whenever the scale times the integer range stays below float32's largest value
    (checked), so IsNaN is false everywhere and Where returns d (a one-element c broadcasts
    to nothing larger)."""

    def pattern(self, op, d, c):
        return op.Where(op.IsNaN(d), c, d)

    def check(self, context, d, c, **_):
        result = pattern.MatchResult()
        node = d.producer()
        if node is None or node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            return result.fail("the guarded value must be a DequantizeLinear's output", d)
        scale = node.inputs[1]
        sv, cv = _ir_utils.get_numpy_value(scale), _ir_utils.get_numpy_value(c)
        if sv is None or not np.all(np.isfinite(sv)):
            return result.fail("the scale must be a finite constant", scale)
        # 2**32 covers (q - zp) for every integer type DequantizeLinear takes up to 32 bits
        if float(np.max(np.abs(sv.astype(np.float64)))) * 2.0**32 >= float(
            np.finfo(np.float32).max
        ):
            return result.fail("the scale times the integer range may overflow float32", scale)
        if cv is None or cv.size != 1 or cv.ndim > (_rank(d) or 0):
            return result.fail("the replacement must be a one-element constant", c)
        return result

    def rewrite(self, op, d, c, **_):
        return op.Identity(d)


def _all_constants_finite(model: ir.Model) -> bool:
    """Every float initializer (Constant nodes are lifted by then) holds finite numbers."""
    return all(
        np.all(np.isfinite(v.const_value.numpy()))
        for v in model.graph.initializers.values()
        if v.dtype in _FLOATS and v.const_value is not None
    )


#: The fusion rules, in the order they are tried on each node (commuted variants included).
RULES: tuple[pattern.RewriteRule, ...] = (
    *(LayerNormFusion.rule(form) for form in ("div", "mul")),
    *(RmsNormFusion.rule(form) for form in ("div", "mul")),
    *(GeluErfFusion.rule(order) for order in range(3)),
    *(GeluTanhFusion.rule(order) for order in range(3)),
    MicrosoftGelu.rule("Gelu"),
    MicrosoftBiasGelu.rule("BiasGelu", "none"),
    MicrosoftBiasGelu.rule("FastGelu", "tanh"),
    MicrosoftFastGelu.rule(),
)

#: Rules folding a per-feature scale / shift into a normalisation (run after :data:`RULES`).
AFFINE_RULES: tuple[pattern.RewriteRule, ...] = (
    NormScaleFusion.rule("LayerNormalization"),
    NormScaleFusion.rule("RMSNormalization"),
    NormBiasFusion.rule(),
)


class FoldGatherElements(pattern.RewriteRuleClassBase):
    """GatherElements of two constants -> their value (numpy's take_along_axis).

    onnxscript folds through onnx's reference implementation, which fails on more than 32
    choices along the axis (it uses np.choose): BERT's token-type ids, a GatherElements of a
    [1, 512] buffer, stay unfolded without this rule."""

    def pattern(self, op, data, indices):
        return op.GatherElements(data, indices, _outputs=["out"])

    def check(self, context, data, indices, out, **_):
        result = pattern.MatchResult()
        d, i = _ir_utils.get_numpy_value(data), _ir_utils.get_numpy_value(indices)
        if d is None or i is None or max(d.size, i.size) > FOLD_LIMIT or d.ndim != i.ndim:
            return result.fail("data and indices must be small constants of one rank")
        return result

    def rewrite(self, op, data, indices, out, **_):
        node = out.producer()
        a = node.attributes.get("axis")
        axis = 0 if a is None else a.value
        d, i = _ir_utils.get_numpy_value(data), _ir_utils.get_numpy_value(indices)
        i = np.where(i < 0, i + d.shape[axis], i)
        return op.initializer(
            ir.tensor(np.take_along_axis(d, i, axis=axis), name=out.name + "__folded")
        )


# -- empty tensors -----------------------------------------------------------------------------


class FoldEmptyTensors(ir.passes.InPlacePass):
    """Replace every node output whose static shape holds a 0 by an empty initializer.

    An empty tensor has exactly one value, so this is exact; the folding that follows drops
    Concat operands that became empty constants and removes the nodes left without users.
    Graph outputs are left alone (an empty graph output is the user's to explain).
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        g = model.graph
        outputs = set(id(v) for v in g.outputs)
        changed = False
        for node in list(g):
            for v in node.outputs:
                if id(v) in outputs or not v.uses() or v.shape is None or v.dtype is None:
                    continue
                dims = list(v.shape)
                if not all(isinstance(d, int) for d in dims) or 0 not in dims:
                    continue
                name = f"{v.name}__empty"
                const = ir.Value(name=name, shape=ir.Shape(dims), type=ir.TensorType(v.dtype))
                const.const_value = ir.tensor(np.zeros(dims, dtype=v.dtype.numpy()), name=name)
                g.register_initializer(const)
                ir.convenience.replace_all_uses_with(v, const)
                changed = True
        return ir.passes.PassResult(model, changed)


# -- the driver --------------------------------------------------------------------------------


def _should_fold(node: ir.Node) -> bool | None:
    """Fold ConstantOfShape (kept by onnxscript's default to keep files small) when its output
    is small: with static shapes it is a mask or position constant."""
    if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx"):
        shape = node.outputs[0].shape
        if shape is not None and all(isinstance(d, int) for d in shape):
            return math.prod(shape) <= FOLD_LIMIT
    return None


def _fold(model: ir.Model) -> None:
    """onnxscript's constant folding (with :class:`FoldGatherElements`) to a fixed point, dead
    nodes removed, constants lifted to initializers.

    This is the folding half of ``optimize_ir``; its default rewrite rules run once in
    :func:`canonicalize` beside the fusions (trying every one of them on every node at each
    folding round took seconds on BERT-base), and its initializer de-duplication and common
    subexpression passes, which hash every weight byte, are left out."""
    ir.passes.Sequential(
        ir.passes.PassManager(
            [
                FoldConstantsPass(
                    shape_inference=True,
                    input_size_limit=FOLD_LIMIT,
                    output_size_limit=FOLD_LIMIT,
                    should_fold=_should_fold,
                ),
                RewritePass([FoldGatherElements.rule()]),
                common_passes.RemoveUnusedNodesPass(),
            ],
            steps=4,
            early_stop=True,
        ),
        common_passes.RemoveUnusedFunctionsPass(),
        common_passes.RemoveUnusedOpsetsPass(),
        common_passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
    )(model)


def _default_opset(model: ir.Model) -> int:
    return max(model.opset_imports.get("", 0), model.opset_imports.get("ai.onnx", 0))


def _single_output(rules) -> list:
    """``rules`` without those whose pattern has several output nodes: onnxscript matches such a
    pattern by scanning the whole graph at every node it tries (SlicesSplit among its defaults),
    which made loading quadratic in the node count (20k nodes: 91 s, 10k: 29 s)."""
    return [r for r in rules if r._target_pattern.has_single_output_node]


def canonicalize(model: onnx.ModelProto, source: str = "model") -> onnx.ModelProto:
    """The canonical form of ``model`` (static input shapes, shapes inferred): folded, without
    empty tensors, at opset :data:`CANONICAL_OPSET` or above, with norms and GELUs fused.

    Raises :class:`ModelError` naming ``source`` when onnxscript cannot process the model
    (an op its folding or version converter cannot handle)."""
    m = ir.serde.deserialize_model(model)
    step = "constant folding"
    # onnxscript logs a warning for each node its folding cannot evaluate (and then leaves
    # as it is); that is not the user's concern
    log = logging.getLogger("onnxscript")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        common_passes.InlinePass()(m)
        FoldEmptyTensors()(m)
        _fold(m)
        if _default_opset(m) < CANONICAL_OPSET:
            step = f"conversion to opset {CANONICAL_OPSET}"
            version_converter.convert_version(m, CANONICAL_OPSET)
        step = "rewriting"
        guard = [SoftmaxNanGuard.rule()] if _all_constants_finite(m) else []
        guard.append(DequantizedNanGuard.rule())
        RewritePass([*_single_output(rewriter._DEFAULT_REWRITE_RULES), *RULES, *guard])(m)
        RewritePass(pattern.RewriteRuleSet(list(AFFINE_RULES), commute=True))(m)
        step = "constant folding"
        FoldEmptyTensors()(m)
        _fold(m)
    except Exception as e:  # onnxscript raises its own errors and plain ones from numpy
        text = " ".join(str(e).split())[:300]
        raise ModelError(f"{source}: canonicalisation ({step}) failed: {text}") from None
    finally:
        log.setLevel(level)
    return ir.serde.serialize_model(m)
