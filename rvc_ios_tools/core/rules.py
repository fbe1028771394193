"""Upstream PyTorch tensors -> Swift-named, channels-last tensors, driven by a network's rule table.

Each network keeps all its conversion knowledge in one table of `Rule`s (`voice.convert.VOICE_RULES`,
`rmvpe.convert.RMVPE_RULES`): a module-path pattern, the Swift/MLX key it becomes, and the kind of module
(which fixes the parameter names and layouts, `MODULE_KINDS`). The converter here, the manifest writer and the
tests all read those tables; nothing else renames keys.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Callable, Iterable

import numpy as np

from .errors import ConfigMismatchError, UnknownKeyError


WEIGHT_NORM_SUFFIXES = {
    "weight_g": "weight_g",
    "weight_v": "weight_v",
    "parametrizations.weight.original0": "weight_g",
    "parametrizations.weight.original1": "weight_v",
}


def split_weight_norm_key(key: str) -> tuple[str, str] | None:
    """`a.b.weight_g` -> (`a.b.weight`, "weight_g"); the parametrization names map to the same roles."""
    for suffix, role in WEIGHT_NORM_SUFFIXES.items():
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1] + ".weight", role
    return None


@dataclasses.dataclass(frozen=True)
class ParamLayout:
    """How one parameter of a module kind is stored for Swift: its new name, layout tag and transform."""

    target_name: str
    layout: str
    transform: Callable[[np.ndarray], np.ndarray]


def _same(array: np.ndarray) -> np.ndarray:
    return array


def _conv1d(array: np.ndarray) -> np.ndarray:
    return array.transpose(0, 2, 1)  # (O, I, K) -> (O, K, I)


def _conv_transpose1d(array: np.ndarray) -> np.ndarray:
    return array.transpose(1, 2, 0)  # (I, O, K) -> (O, K, I)


def _conv2d(array: np.ndarray) -> np.ndarray:
    return array.transpose(0, 2, 3, 1)  # (O, I, H, W) -> (O, H, W, I)


def _conv_transpose2d(array: np.ndarray) -> np.ndarray:
    return array.transpose(1, 2, 3, 0)  # (I, O, H, W) -> (O, H, W, I)


BIAS = ParamLayout("bias", "O", _same)

# Module kinds: parameter name in PyTorch -> how it is stored. `None` means dropped by this rule.
MODULE_KINDS: dict[str, dict[str, ParamLayout | None]] = {
    "conv1d": {"weight": ParamLayout("weight", "OKI", _conv1d), "bias": BIAS},
    "conv_transpose1d": {"weight": ParamLayout("weight", "OKI", _conv_transpose1d), "bias": BIAS},
    "conv2d": {"weight": ParamLayout("weight", "OHWI", _conv2d), "bias": BIAS},
    "conv_transpose2d": {"weight": ParamLayout("weight", "OHWI", _conv_transpose2d), "bias": BIAS},
    "linear": {"weight": ParamLayout("weight", "OI", _same), "bias": BIAS},
    "embedding": {"weight": ParamLayout("weight", "ND", _same)},
    # torch.nn.LayerNorm / GroupNorm affine parameters, per channel.
    "layer_norm": {"weight": ParamLayout("weight", "C", _same), "bias": ParamLayout("bias", "C", _same)},
    # VITS LayerNorm stores gamma/beta; MLX's LayerNorm calls them weight/bias.
    "layer_norm_gamma_beta": {
        "gamma": ParamLayout("weight", "C", _same),
        "beta": ParamLayout("bias", "C", _same),
    },
    # Relative-position tables keep their names and (heads, 2*window+1, k_channels) layout: not transposed.
    "relative_attention": {
        "emb_rel_k": ParamLayout("emb_rel_k", "HMD", _same),
        "emb_rel_v": ParamLayout("emb_rel_v", "HMD", _same),
    },
    # torch.nn.GRU(bidirectional=True), one layer: PyTorch's gate order (r, z, n) is kept as stored; the
    # manifest says so (`gru_gate_order: "rzn"`).
    "bidirectional_gru": {
        f"{param}_l0{suffix}": ParamLayout(f"{direction}.{param}", "OI" if param.startswith("weight") else "O", _same)
        for suffix, direction in (("", "forward"), ("_reverse", "reverse"))
        for param in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    },
    "batch_norm": {
        "weight": ParamLayout("weight", "C", _same),
        "bias": ParamLayout("bias", "C", _same),
        "running_mean": ParamLayout("running_mean", "C", _same),
        "running_var": ParamLayout("running_var", "C", _same),
        "num_batches_tracked": None,  # a training counter; inference never reads it
    },
}


@dataclasses.dataclass(frozen=True)
class Rule:
    """`pattern` matches a whole upstream module path; `target` is formatted with its groups."""

    pattern: str
    target: str | None  # None: the module is dropped
    kind: str
    why: str = ""

    def match(self, module_path: str) -> re.Match[str] | None:
        return re.fullmatch(self.pattern, module_path)

    def target_key(self, match: re.Match[str]) -> str:
        assert self.target is not None
        groups = match.groups()
        # `{half}` is the first group halved: `flow.flows.K` (K even) -> `flow.flow_{K/2}`, because the odd
        # indices of upstream's flow list are the weightless Flip modules.
        half = str(int(groups[0]) // 2) if "{half}" in self.target else ""
        return self.target.format(*groups, half=half)


@dataclasses.dataclass(frozen=True)
class ConvertedTensor:
    source_keys: tuple[str, ...]
    key: str
    layout: str
    array: np.ndarray
    folded_weight_norm: bool


@dataclasses.dataclass(frozen=True)
class DroppedTensor:
    source_key: str
    why: str


def weight_norm_dim(g_shape: tuple[int, ...], v_shape: tuple[int, ...], key: str = "a weight-norm gain") -> int:
    """The `dim` a weight-norm pair was made with, read from its gain's shape; ConfigMismatchError naming `key`
    when no `dim` gives that gain.

    PyTorch's `weight_norm(module, dim=d)` keeps one gain per index of axis d: `g` has v's shape with every
    other axis 1. Voices use dim 0 (per output row: `g` is (O, 1, 1)); HuBERT's positional convolution uses
    dim 2 (per kernel tap: `g` is (1, 1, 128)). A gain of all ones-axes is dim 0, PyTorch's default.
    """
    g_shape, v_shape = tuple(g_shape), tuple(v_shape)
    if len(g_shape) == len(v_shape) and len(v_shape) >= 1:
        candidates = [
            d for d in range(len(v_shape))
            if g_shape[d] == v_shape[d] and all(size == 1 for i, size in enumerate(g_shape) if i != d)
        ]
        if candidates:
            return 0 if 0 in candidates else candidates[0]
    raise ConfigMismatchError(
        f"`{key}` has shape {g_shape}, which is no weight-norm gain for a direction of shape {v_shape} (it must "
        "have the direction's shape with every axis but one of size 1). The file is damaged or not what it claims."
    )


def fold_weight_norm(g: np.ndarray, v: np.ndarray) -> np.ndarray:
    """PyTorch's weight norm: w = g * v / ||v||, the norm over every dim but `dim` (read from g's shape,
    `weight_norm_dim`), in float32.

    For voices `dim` is 0: the norm is per output row of the PyTorch-layout tensor (for ConvTranspose1d that
    is the *input* channel, PyTorch's dim 0); one global norm instead is a known port bug that scales weights
    wrongly. HuBERT's positional convolution has dim 2 (one gain per kernel tap); folding it over dim 0 is
    another known port bug, and `torch._weight_norm(v, g, 0)` with that gain crashes the process, so the dim
    is checked before torch sees it. Computed by `torch._weight_norm`, the very function upstream's weight-norm
    hook runs on every forward pass, on the float32 upcast of the (usually fp16) stored pair: the folded
    weight is bit for bit the weight upstream's float32 model multiplies with.
    """
    import torch

    dim = weight_norm_dim(np.shape(g), np.shape(v))
    v32 = torch.from_numpy(np.asarray(v)).to(torch.float32)
    g32 = torch.from_numpy(np.asarray(g)).to(torch.float32)
    return torch._weight_norm(v32, g32, dim).numpy()


def contiguous_as(view: np.ndarray, dtype: str) -> np.ndarray:
    """`np.ascontiguousarray(view, dtype)` in one pass: the layout transpose and the dtype cast happen in the
    same copy (torch's copy kernel; numpy's is slower)."""
    import torch

    if view.flags.c_contiguous and view.dtype == np.dtype(dtype):
        return view
    target = getattr(torch, dtype)
    matrix = _transposed_matrix(view)
    if matrix is not None and matrix.size >= _BLOCKED_TRANSPOSE_MIN and matrix.flags.writeable:
        # A layout that moves axis 0 last (ConvTranspose's) is one 2-D transpose. A strided copy of it reads
        # a new cache line for every element; torch's blocked transpose (same dtype, 2-D only) does not. The
        # cast goes first, over contiguous memory, so the transpose moves the smaller elements.
        rows = torch.from_numpy(matrix).to(target)
        out = torch.empty((rows.shape[1], rows.shape[0]), dtype=target)
        out.copy_(rows.t())
        return out.numpy().reshape(view.shape)
    source = torch.from_numpy(view if view.flags.writeable else view.copy())
    if source.dtype == target:
        return source.contiguous().numpy()  # `.to` would hand back the strided view uncopied
    return source.to(target, memory_format=torch.contiguous_format).numpy()


# Below this many elements a plain strided copy is as fast (and torch's blocked path needs a few blocks).
_BLOCKED_TRANSPOSE_MIN = 4096


def _transposed_matrix(view: np.ndarray) -> np.ndarray | None:
    """The C-contiguous (rows, cols) matrix whose transpose, reshaped, `view` is, when `view` is a C-contiguous
    array with its axis 0 moved last (`a.transpose(1, ..., n-1, 0)`); otherwise None."""
    if view.ndim < 2 or view.size == 0:
        return None
    expected = view.itemsize
    for size, stride in zip(reversed(view.shape[:-1]), reversed(view.strides[:-1])):
        if size != 1 and stride != expected:
            return None
        expected *= size
    if view.shape[-1] != 1 and view.strides[-1] != expected:
        return None
    rows, cols = view.shape[-1], view.size // view.shape[-1]
    return np.lib.stride_tricks.as_strided(view, shape=(rows, cols), strides=(expected, view.itemsize))


@dataclasses.dataclass(frozen=True)
class WeightNormPair:
    """A (gain, direction) pair still to be folded (`fold_weight_norm`) into one weight."""

    g: np.ndarray
    v: np.ndarray

    def fold(self) -> np.ndarray:
        return fold_weight_norm(self.g, self.v)


def merge_weight_norm(
    state_dict: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray | WeightNormPair], dict[str, tuple[str, ...]]]:
    """Pair each weight-norm (gain, direction) under its `weight` key; report which source keys make each.

    The pairs are folded later, where the converter does its array work (on worker threads).
    """
    merged: dict[str, np.ndarray | WeightNormPair] = {}
    sources: dict[str, tuple[str, ...]] = {}
    pairs: dict[str, dict[str, str]] = {}
    for key, tensor in state_dict.items():
        split = split_weight_norm_key(key)
        if split is None:
            merged[key] = tensor
            sources[key] = (key,)
        else:
            pairs.setdefault(split[0], {})[split[1]] = key
    for weight_key, roles in pairs.items():
        if set(roles) != {"weight_g", "weight_v"}:
            missing = "gain" if "weight_g" not in roles else "direction"
            raise UnknownKeyError(
                f"`{next(iter(roles.values()))}` is half of a weight-norm pair: its {missing} is missing. "
                "The voice file is incomplete."
            )
        if weight_key in merged:
            raise UnknownKeyError(f"`{weight_key}` is stored both plain and as a weight-norm pair.")
        gain, direction = state_dict[roles["weight_g"]], state_dict[roles["weight_v"]]
        weight_norm_dim(np.shape(gain), np.shape(direction), roles["weight_g"])  # an impossible gain, named here
        merged[weight_key] = WeightNormPair(gain, direction)
        sources[weight_key] = (roles["weight_g"], roles["weight_v"])
    return merged, sources


def find_rule(module_path: str, rules: Iterable[Rule]) -> tuple[Rule, re.Match[str]] | None:
    for rule in rules:
        match = rule.match(module_path)
        if match:
            return rule, match
    return None


@dataclasses.dataclass(frozen=True)
class PlannedTensor:
    """One output tensor: its Swift key, the (merged) source key it comes from, its layout and final shape."""

    key: str
    source_key: str
    layout: ParamLayout
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ConversionPlan:
    """Every key matched and checked, before any array work: what will be written, and what is dropped."""

    tensors: tuple[PlannedTensor, ...]
    dropped: tuple[DroppedTensor, ...]
    merged: dict[str, np.ndarray | WeightNormPair]
    sources: dict[str, tuple[str, ...]]


def plan_conversion(state_dict: dict[str, np.ndarray], rules: Iterable[Rule], *, source_name: str = "The weights",
                    network: str = "RVC synthesizer") -> ConversionPlan:
    """Apply the rule table to every key; an unmatched key is an error (naming `source_name` and the `network`
    the rules are for), never a silent drop."""
    rules = tuple(rules)
    merged, sources = merge_weight_norm(state_dict)
    planned: list[PlannedTensor] = []
    targets: dict[str, str] = {}
    dropped: list[DroppedTensor] = []
    for key in sorted(merged):
        module_path, _, param = key.rpartition(".")
        found = find_rule(module_path, rules) or find_rule(key, rules)
        if found is None:
            raise UnknownKeyError(
                f"{source_name}: no conversion rule for `{key}`, which is not a tensor of an {network} we know. "
                f"Check that the file is the {network}'s; if it comes from a modified one, report the key so a "
                "rule can be added."
            )
        rule, match = found
        if rule.target is None:
            dropped.extend(DroppedTensor(source, rule.why) for source in sources[key])
            continue
        params = MODULE_KINDS[rule.kind]
        if param not in params:
            raise UnknownKeyError(
                f"`{key}`: a {rule.kind} module has no parameter `{param}` (known: {', '.join(params)})."
            )
        layout = params[param]
        if layout is None:
            dropped.extend(DroppedTensor(source, f"{rule.kind} `{param}` is not used at inference") for source in sources[key])
            continue
        target = f"{rule.target_key(match)}.{layout.target_name}"
        if target in targets:
            raise UnknownKeyError(f"`{key}` and `{targets[target]}` both map to `{target}`.")
        targets[target] = key
        value = merged[key]
        source_shape = value.v.shape if isinstance(value, WeightNormPair) else np.shape(value)
        if len(source_shape) != len(layout.layout):  # one layout letter per axis
            raise ConfigMismatchError(
                f"{source_name}: `{key}` has shape {tuple(source_shape)}, but a {rule.kind} {param} has "
                f"{len(layout.layout)} axes ({layout.layout}). The file is damaged or from another network."
            )
        # The layouts only permute axes, so a zero-stride stand-in gives the final shape for free.
        shape = layout.transform(np.broadcast_to(np.float32(0), source_shape)).shape
        planned.append(PlannedTensor(target, key, layout, tuple(shape)))
    return ConversionPlan(tuple(planned), tuple(dropped), merged, sources)


def run_conversion(
    plan: ConversionPlan,
    dtype: str = "float32",
    on_converted: Callable[[str, np.ndarray], None] | None = None,
    workers: int = 1,
) -> dict[str, ConvertedTensor]:
    """The array work of a plan: weight-norm folds and layout copies in `dtype`, on `workers` threads (torch
    and the checksum release the GIL, so the threads share the cores; see `run_from_both_ends`).
    `on_converted(key, array)` runs on the worker right after each tensor is made (the exporter checksums it
    there, while it is in cache).
    """

    def produce(item: PlannedTensor) -> np.ndarray:
        value = plan.merged[item.source_key]
        # Folded weights are float32 and rounded once to `dtype`; an fp16 source goes to fp16 or float32
        # exactly. One copy: the transpose is materialised directly in the output dtype.
        source = value.fold() if isinstance(value, WeightNormPair) else value
        array = contiguous_as(item.layout.transform(source), dtype)
        if on_converted is not None:
            on_converted(item.key, array)
        return array

    if workers > 1:
        order = sorted(plan.tensors, key=lambda item: -_nbytes(plan.merged[item.source_key]))
        produced = dict(run_from_both_ends(order, lambda item: (item.key, produce(item)), workers))
    else:
        produced = {item.key: produce(item) for item in plan.tensors}
    return {
        item.key: ConvertedTensor(
            source_keys=plan.sources[item.source_key],
            key=item.key,
            layout=item.layout.layout,
            array=produced[item.key],
            folded_weight_norm=len(plan.sources[item.source_key]) == 2,
        )
        for item in plan.tensors
    }


def run_from_both_ends(items: list, work: Callable, workers: int) -> list:
    """`[work(item) for item in items]` on `workers` threads, for items sorted largest first: helper threads
    take from the front, the calling thread from the back, until they meet.

    Torch and the writers release the GIL inside each call, but every call also needs the GIL around it.
    Threads that all take small items hand the GIL to each other thousands of times, each hand-over waiting
    for a thread to wake, and run one at a time (two threads measured no faster than one). This way one
    thread works through the few large tensors, seldom wanting the GIL, while the other runs the many small
    ones. Order of the results is the order of `items`. The first error is raised once every thread stops.
    """
    results: list = [None] * len(items)
    lock = threading.Lock()
    bounds = [0, len(items)]  # next front index, one past the next back index
    failures: list[BaseException] = []

    def take(front: bool) -> int | None:
        with lock:
            if failures or bounds[0] >= bounds[1]:
                return None
            if front:
                bounds[0] += 1
                return bounds[0] - 1
            bounds[1] -= 1
            return bounds[1]

    def drain(front: bool) -> None:
        try:
            while (index := take(front)) is not None:
                results[index] = work(items[index])
        except BaseException as exc:  # re-raised by the caller below
            with lock:
                failures.append(exc)

    helpers = [threading.Thread(target=drain, args=(True,), daemon=True) for _ in range(workers - 1)]
    for helper in helpers:
        helper.start()
    drain(False)
    for helper in helpers:
        helper.join()
    if failures:
        raise failures[0]
    return results


def convert_state_dict(
    state_dict: dict[str, np.ndarray], rules: Iterable[Rule], dtype: str = "float32"
) -> tuple[dict[str, ConvertedTensor], list[DroppedTensor]]:
    """`plan_conversion` then `run_conversion`: every tensor converted or dropped by a named rule."""
    plan = plan_conversion(state_dict, rules)
    return run_conversion(plan, dtype), list(plan.dropped)


def _nbytes(value: np.ndarray | WeightNormPair) -> int:
    return value.v.nbytes if isinstance(value, WeightNormPair) else value.nbytes
