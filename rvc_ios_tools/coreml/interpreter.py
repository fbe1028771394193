"""Evaluate a converted Core ML (MIL) program with numpy, on Linux, where Core ML itself cannot predict.

Every op runs through coremltools' own numpy `value_inference` where it has one (the runtime values are bound
to the op's input variables for the duration of the call), and through the numpy implementations below where it
has none (`conv`, `conv_transpose`, `batch_norm`, `upsample_*`, `while_loop`, `scatter`, ...) or where its
`value_inference` reads a static shape a flexible-length program does not have (`shape`, `fill`, `reshape`).
Compressed weights (`constexpr_*` ops) are materialised with coremltools' `materialized_val_inference`.

This checks the conversion: the graph coremltools produced, its passes, its weights and its dtype casts. It
does not check Apple's runtime (its fp16 accumulation on GPU and Neural Engine, fused kernels, device bugs).
fp16 programs are emulated: values are rounded to float16 between ops as the program's types say, while the
numpy kernels here accumulate in float32.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import RvcIosError


class UnsupportedOpError(RvcIosError):
    """The program holds an op neither coremltools nor this interpreter can evaluate."""


Kernel = Callable[[Any, dict[str, Any]], Any]
KERNELS: dict[str, Kernel] = {}


def kernel(*op_types: str):
    def register(function: Kernel) -> Kernel:
        for op_type in op_types:
            KERNELS[op_type] = function
        return function

    return register


def load_program(package_path, function_name: str | None = None):
    """The MIL program of a saved .mlpackage (the default function, or `function_name` of a multifunction one)."""
    from coremltools.converters.mil.frontend.milproto.load import load

    from .toolchain import import_coremltools

    ct = import_coremltools()
    model = ct.models.MLModel(str(package_path), skip_model_load=True, function_name=function_name)
    spec = model.get_spec()
    return load(spec, spec.specificationVersion, model.weights_dir)


def run_program(program, inputs: Mapping[str, np.ndarray], function_name: str = "main") -> dict[str, np.ndarray]:
    """Run `function_name` of `program` on `inputs` (by the function's input names); its outputs by name."""
    function = program.functions[function_name]
    values: dict[str, Any] = {}
    for name, var in function.inputs.items():
        if name not in inputs:
            raise KeyError(f"the program's input {name!r} was not given (given: {', '.join(inputs)})")
        values[name] = np.asarray(inputs[name]).astype(_numpy_dtype(var), copy=False)
    run_block(function, values)
    return {var.name: values[var.name] for var in function.outputs}


def run_block(block, values: dict[str, Any]) -> None:
    for op in block.operations:
        results = evaluate(op, values)
        if len(op.outputs) == 1:
            results = (results,)
        for var, result in zip(op.outputs, results):
            values[var.name] = result if isinstance(result, list) else _as_dtype(result, var)


def evaluate(op, values: dict[str, Any]) -> Any:
    if op.op_type == "while_loop":
        return while_loop(op, values)
    if op.op_type in KERNELS:
        return KERNELS[op.op_type](op, _inputs(op, values))
    if op.op_type == "const":
        return op.outputs[0].val
    if op.op_type.startswith("constexpr_"):
        return op.materialized_val_inference()
    return _value_inference(op, values)


def _inputs(op, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, var in op.inputs.items():
        if isinstance(var, (list, tuple)):
            out[name] = [_value(v, values) for v in var]
        else:
            out[name] = _value(var, values)
    return out


def _value(var, values: dict[str, Any]) -> Any:
    if var.name in values:
        return values[var.name]
    if var.val is not None:
        return var.val
    raise KeyError(f"no value for {var.name}")


def _value_inference(op, values: dict[str, Any]) -> Any:
    """coremltools' own numpy implementation, with the runtime values bound to the op's inputs."""
    bound = []
    try:
        for var in op.get_flattened_inputs():
            if var.name in values and (var.op is None or var.op.op_type != "const"):
                builtin = var.sym_type()
                builtin.val = values[var.name]
                bound.append((var, var._sym_val))
                var._sym_val = builtin
        try:
            result = op.value_inference()
        except NotImplementedError:
            raise UnsupportedOpError(
                f"the Core ML program holds `{op.op_type}` ({op.name}), which has no numpy implementation here; "
                "add one to rvc_ios_tools/coreml/interpreter.py."
            ) from None
    finally:
        for var, previous in reversed(bound):
            var._sym_val = previous
    return result


def _numpy_dtype(var) -> np.dtype:
    from coremltools.converters.mil.mil import types

    return np.dtype(types.nptype_from_builtin(var.dtype))


def _as_dtype(result: Any, var) -> Any:
    from coremltools.converters.mil.mil import types

    if not (types.is_tensor(var.sym_type) or types.is_scalar(var.sym_type)):
        return result
    return np.asarray(result).astype(_numpy_dtype(var), copy=False)


# --- numpy kernels for the ops RVC's networks use that have no (runtime-shaped) value_inference ---


def _float32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _pads(op, a: dict[str, Any], spatial: tuple[int, ...], kernel_shape: tuple[int, ...], strides, dilations):
    pad_type = str(a.get("pad_type", "valid"))
    if pad_type == "custom":
        pad = [int(p) for p in a["pad"]]
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(spatial))]
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    pads = []
    for size, k, s, d in zip(spatial, kernel_shape, strides, dilations):
        total = max((int(np.ceil(size / s)) - 1) * s + (k - 1) * d + 1 - size, 0)
        first = total // 2 if pad_type == "same" else total - total // 2
        pads.append((first, total - first))
    return pads


@kernel("conv")
def conv(op, a: dict[str, Any]) -> np.ndarray:
    """N-D convolution, NC* layout, weight (C_out, C_in / groups, *K): one tensordot per kernel tap."""
    x, w = _float32(a["x"]), _float32(a["weight"])
    spatial_rank = x.ndim - 2
    strides = [int(s) for s in a.get("strides", [1] * spatial_rank)]
    dilations = [int(d) for d in a.get("dilations", [1] * spatial_rank)]
    groups = int(a.get("groups", 1))
    pads = _pads(op, a, x.shape[2:], w.shape[2:], strides, dilations)
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    out_sizes = [
        (x.shape[2 + i] - (w.shape[2 + i] - 1) * dilations[i] - 1) // strides[i] + 1 for i in range(spatial_rank)
    ]
    c_in = w.shape[1]
    c_out_group = w.shape[0] // groups
    out = np.zeros((x.shape[0], w.shape[0], *out_sizes), np.float32)
    for g in range(groups):
        xg = x[:, g * c_in:(g + 1) * c_in]
        wg = w[g * c_out_group:(g + 1) * c_out_group]
        for tap in np.ndindex(*w.shape[2:]):
            window = tuple(
                slice(tap[i] * dilations[i], tap[i] * dilations[i] + (out_sizes[i] - 1) * strides[i] + 1, strides[i])
                for i in range(spatial_rank)
            )
            patch = xg[(slice(None), slice(None), *window)]
            # (N, C_in, *S) x (C_out, C_in) -> (N, *S, C_out)
            product = np.tensordot(patch, wg[(slice(None), slice(None), *tap)], axes=([1], [1]))
            out[:, g * c_out_group:(g + 1) * c_out_group] += np.moveaxis(product, -1, 1)
    if a.get("bias") is not None:
        out += _float32(a["bias"]).reshape(1, -1, *([1] * spatial_rank))
    return out


@kernel("conv_transpose")
def conv_transpose(op, a: dict[str, Any]) -> np.ndarray:
    """Transposed convolution, weight (C_in, C_out / groups, *K): every input frame scattered once per tap."""
    x, w = _float32(a["x"]), _float32(a["weight"])
    spatial_rank = x.ndim - 2
    strides = [int(s) for s in a.get("strides", [1] * spatial_rank)]
    dilations = [int(d) for d in a.get("dilations", [1] * spatial_rank)]
    if int(a.get("groups", 1)) != 1:
        raise UnsupportedOpError(f"grouped conv_transpose ({op.name}) is not implemented here")
    full = [(x.shape[2 + i] - 1) * strides[i] + (w.shape[2 + i] - 1) * dilations[i] + 1 for i in range(spatial_rank)]
    out = np.zeros((x.shape[0], w.shape[1], *full), np.float32)
    for tap in np.ndindex(*w.shape[2:]):
        target = tuple(
            slice(tap[i] * dilations[i], tap[i] * dilations[i] + (x.shape[2 + i] - 1) * strides[i] + 1, strides[i])
            for i in range(spatial_rank)
        )
        product = np.tensordot(x, w[(slice(None), slice(None), *tap)], axes=([1], [0]))
        out[(slice(None), slice(None), *target)] += np.moveaxis(product, -1, 1)
    if str(a.get("pad_type", "valid")) == "custom":
        pad = [int(p) for p in a["pad"]]
        out = out[(slice(None), slice(None), *(
            slice(pad[2 * i], full[i] - pad[2 * i + 1]) for i in range(spatial_rank)))]
    output_shape = a.get("output_shape")
    if output_shape is not None:
        wanted = [int(s) for s in np.asarray(output_shape).reshape(-1)[-spatial_rank:]]
        grown = [(0, max(0, wanted[i] - out.shape[2 + i])) for i in range(spatial_rank)]
        out = np.pad(out, [(0, 0), (0, 0), *grown])[(slice(None), slice(None), *(slice(0, s) for s in wanted))]
    if a.get("bias") is not None:
        out += _float32(a["bias"]).reshape(1, -1, *([1] * spatial_rank))
    return out


@kernel("batch_norm")
def batch_norm(op, a: dict[str, Any]) -> np.ndarray:
    x = _float32(a["x"])
    shape = (1, -1, *([1] * (x.ndim - 2)))
    scale = 1.0 / np.sqrt(_float32(a["variance"]) + np.float32(a.get("epsilon", 1e-5)))
    out = (x - _float32(a["mean"]).reshape(shape)) * scale.reshape(shape)
    if a.get("gamma") is not None:
        out = out * _float32(a["gamma"]).reshape(shape)
    if a.get("beta") is not None:
        out = out + _float32(a["beta"]).reshape(shape)
    return out


@kernel("avg_pool")
def avg_pool(op, a: dict[str, Any]) -> np.ndarray:
    x = _float32(a["x"])
    kernel_sizes = [int(k) for k in a["kernel_sizes"]]
    strides = [int(s) for s in a["strides"]]
    pads = _pads(op, a, x.shape[2:], kernel_sizes, strides, [1] * len(kernel_sizes))
    padded = np.pad(x, [(0, 0), (0, 0), *pads])
    ones = np.pad(np.ones(x.shape[2:], np.float32), pads)
    out_sizes = [(padded.shape[2 + i] - kernel_sizes[i]) // strides[i] + 1 for i in range(len(kernel_sizes))]
    total = np.zeros((*x.shape[:2], *out_sizes), np.float32)
    count = np.zeros(out_sizes, np.float32)
    for tap in np.ndindex(*kernel_sizes):
        window = tuple(slice(tap[i], tap[i] + (out_sizes[i] - 1) * strides[i] + 1, strides[i])
                       for i in range(len(kernel_sizes)))
        total += padded[(slice(None), slice(None), *window)]
        count += ones[window]
    if bool(a.get("exclude_padding_from_average", False)):
        return total / count
    return total / np.float32(np.prod(kernel_sizes))  # the op's default: zero padding counted in the average


@kernel("upsample_nearest_neighbor")
def upsample_nearest_neighbor(op, a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    out_h = int(np.floor(x.shape[-2] * float(a.get("scale_factor_height", 1))))
    out_w = int(np.floor(x.shape[-1] * float(a.get("scale_factor_width", 1))))
    rows = np.minimum((np.arange(out_h) * x.shape[-2] / out_h).astype(np.int64), x.shape[-2] - 1)
    cols = np.minimum((np.arange(out_w) * x.shape[-1] / out_w).astype(np.int64), x.shape[-1] - 1)
    return x[..., rows, :][..., cols]


def _linear_positions(size: int, out: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    if align_corners:
        return np.arange(out) * ((size - 1) / (out - 1)) if out > 1 else np.zeros(out)
    if half_pixel:
        return np.clip((np.arange(out) + 0.5) * (size / out) - 0.5, 0, size - 1)
    return np.clip(np.arange(out) * (size / out), 0, size - 1)


def _interpolate_axis(x: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, x.shape[axis] - 1)
    frac = (positions - low).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = frac.reshape(shape)
    return np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac


@kernel("upsample_bilinear")
def upsample_bilinear(op, a: dict[str, Any]) -> np.ndarray:
    x = _float32(a["x"])
    align = bool(a.get("align_corners", False))
    half_pixel = bool(a.get("half_pixel_centers", not align))
    out_h = int(np.floor(x.shape[-2] * float(a.get("scale_factor_height", 1))))
    out_w = int(np.floor(x.shape[-1] * float(a.get("scale_factor_width", 1))))
    if out_h != x.shape[-2]:
        x = _interpolate_axis(x, x.ndim - 2, _linear_positions(x.shape[-2], out_h, align, half_pixel))
    if out_w != x.shape[-1]:
        x = _interpolate_axis(x, x.ndim - 1, _linear_positions(x.shape[-1], out_w, align, half_pixel))
    return x


@kernel("crop")
def crop(op, a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    (top, bottom), (left, right) = np.asarray(a["crop_height"]).tolist(), np.asarray(a["crop_width"]).tolist()
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]


@kernel("silu")
def silu(op, a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    return x / (1 + np.exp(-x))


@kernel("scatter")
def scatter(op, a: dict[str, Any]) -> np.ndarray:
    data = np.array(a["data"], copy=True)
    indices = np.asarray(a["indices"]).astype(np.int64)
    updates = np.asarray(a["updates"])
    axis = int(a.get("axis", 0))
    mode = str(a.get("mode", "add"))
    moved = np.moveaxis(data, axis, 0)
    updates = np.moveaxis(updates, axis, 0)
    indices = np.where(indices < 0, indices + moved.shape[0], indices)
    if mode == "update":
        moved[indices] = updates
    elif mode == "add":
        np.add.at(moved, indices, updates)
    else:
        raise UnsupportedOpError(f"scatter mode {mode!r} ({op.name}) is not implemented here")
    return np.moveaxis(moved, 0, axis)


@kernel("shape")
def shape(op, a: dict[str, Any]) -> np.ndarray:
    return np.asarray(np.shape(a["x"]), np.int32)


@kernel("reshape")
def reshape(op, a: dict[str, Any]) -> np.ndarray:
    target = [int(s) for s in np.asarray(a["shape"]).reshape(-1)]
    x = np.asarray(a["x"])
    target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]  # MIL: 0 copies the input's axis
    return x.reshape(target)


@kernel("fill")
def fill(op, a: dict[str, Any]) -> np.ndarray:
    shape_value = [int(s) for s in np.asarray(a["shape"]).reshape(-1)]
    return np.full(shape_value, a.get("value", 0.0), dtype=_numpy_dtype(op.outputs[0]))


def while_loop(op, values: dict[str, Any]) -> tuple:
    """MIL's while_loop: blocks[0] the condition, blocks[1] the body, both over the loop variables; the blocks
    read the enclosing function's values too."""
    loop_values = list(_inputs(op, values)["loop_vars"])
    condition, body = op.blocks
    while True:
        for var, value in zip(condition.inputs, loop_values):
            values[var.name] = value
        run_block(condition, values)
        if not bool(np.asarray(_value(condition.outputs[0], values))):
            break
        for var, value in zip(body.inputs, loop_values):
            values[var.name] = value
        run_block(body, values)
        loop_values = [_value(var, values) for var in body.outputs]
    return tuple(loop_values)



@kernel("expand_dims")
def expand_dims(op, a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    rank = x.ndim + len(a["axes"])
    return np.expand_dims(x, tuple(sorted(int(axis) % rank for axis in a["axes"])))


@kernel("squeeze")
def squeeze(op, a: dict[str, Any]) -> np.ndarray:
    x = np.asarray(a["x"])
    if a.get("axes") is None:
        return np.squeeze(x)
    return np.squeeze(x, tuple(int(axis) % x.ndim for axis in a["axes"]))


@kernel("fill_like")
def fill_like(op, a: dict[str, Any]) -> np.ndarray:
    return np.full(np.shape(a["ref_tensor"]), a.get("value", 0.0), dtype=_numpy_dtype(op.outputs[0]))


_REDUCTIONS = {
    "reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min,
    "reduce_prod": np.prod, "reduce_sum_square": lambda x, **kw: np.sum(np.square(x), **kw),
}


def _reduce(op, a: dict[str, Any]) -> np.ndarray:
    # coremltools' own value_inference passes keep_dims as a numpy bool, which numpy 2.4 refuses as `keepdims`.
    x = np.asarray(a["x"])
    axes = a.get("axes")
    axis = None if axes is None else tuple(int(axis) % max(x.ndim, 1) for axis in np.asarray(axes).reshape(-1))
    return _REDUCTIONS[op.op_type](x, axis=axis, keepdims=bool(a.get("keep_dims", False)))


for _op_type in _REDUCTIONS:
    KERNELS[_op_type] = _reduce
