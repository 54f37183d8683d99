"""Activation capture: run a model over a data set and keep named layers' outputs as numpy arrays
(or, with ``keep_on_device=True``, as tensors on the model's device; docs/spec.md §8.5)."""

from __future__ import annotations

import difflib
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._progress import Progress
from .._validation import check_bool, check_optional_bool, shown

# Dropout-type modules that `stochastic=True` keeps in training mode. Our own noisy layers mark
# themselves with `repcompress_stochastic = True`.
_TORCH_DROPOUT = (torch.nn.modules.dropout._DropoutNd,)


def is_stochastic(module: torch.nn.Module) -> bool:
    """Whether `module` injects noise in training mode (dropout of any kind, our noisy layers)."""
    return isinstance(module, _TORCH_DROPOUT) or bool(getattr(module, "repcompress_stochastic", False))


@dataclass
class Activations:
    """What :func:`capture` returns.

    Attributes
    ----------
    layers : dict name -> ndarray (R, d), or torch.Tensor (R, d) with ``keep_on_device=True``
        Each layer's output, flattened per sample (R = n_inputs · n_passes rows: the passes over
        one batch follow each other).
    labels, sample_ids : ndarray (R,)
        The label of each row and the index of its input in the order the data yielded them.
    means, variances : dict name -> ndarray (R, d) (tensors with ``keep_on_device=True``)
        For Gaussian-channel layers (:class:`GaussianDropout`, :class:`GaussianEncoder`, or any
        module with a ``gaussian_moments(input)`` method): the exact mean and variance of Z | x,
        ready for :func:`repcompress.gaussian_channel_mi`.
    shapes : dict name -> tuple
        Each layer's per-sample output shape before flattening.
    n_passes : int
    """

    layers: dict[str, np.ndarray]
    labels: np.ndarray
    sample_ids: np.ndarray
    means: dict[str, np.ndarray] = field(default_factory=dict)
    variances: dict[str, np.ndarray] = field(default_factory=dict)
    shapes: dict[str, tuple] = field(default_factory=dict)
    n_passes: int = 1

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"no layer {name!r} was captured; captured: {', '.join(self.layers)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.layers

    @property
    def names(self) -> list[str]:
        return list(self.layers)

    @property
    def n_inputs(self) -> int:
        return int(self.labels.shape[0] // self.n_passes)

    def first_pass(self) -> Activations:
        """The rows of the first pass only (one row per input)."""
        if self.n_passes == 1:
            return self
        keep = _first_pass_rows(self.sample_ids)

        def pick(arrays: dict[str, Any]) -> dict[str, Any]:
            return {
                k: v[torch.as_tensor(keep, device=v.device)] if isinstance(v, torch.Tensor) else v[keep]
                for k, v in arrays.items()
            }

        return Activations(
            pick(self.layers),
            self.labels[keep],
            self.sample_ids[keep],
            pick(self.means),
            pick(self.variances),
            dict(self.shapes),
            1,
        )

    def save(self, path: Any, layer: str) -> None:
        """Writes one layer as an ``.npz`` file for ``repcompress estimate``: ``z`` (the layer's
        output, or the clean means of a Gaussian-channel layer), ``labels``, and ``variances``
        where the layer has them."""
        if layer in self.means:
            np.savez(path, labels=self.labels, z=_host(self.means[layer]), variances=_host(self.variances[layer]))
        else:
            np.savez(path, labels=self.labels, z=_host(self[layer]))

    @property
    def on_device(self) -> bool:
        """Whether the arrays are tensors (``capture(..., keep_on_device=True)``)."""
        return any(isinstance(v, torch.Tensor) for v in self.layers.values())


def _host(a: Any) -> np.ndarray:
    """A numpy copy of a tensor (numpy arrays as they are)."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a


def _first_pass_rows(sample_ids: np.ndarray) -> np.ndarray:
    _, first = np.unique(sample_ids, return_index=True)
    return np.sort(first)


class _Rows:
    """A growable (rows, d) float array: capacity doubles, so appending is amortised O(1) and
    the chunks are never held twice."""

    def __init__(self, d: int, dtype: np.dtype, hint: int):
        self.data = np.empty((max(hint, 1), d), dtype=dtype)
        self.n = 0

    def append(self, rows: np.ndarray) -> None:
        need = self.n + rows.shape[0]
        if need > self.data.shape[0]:
            grown = np.empty((max(need, 2 * self.data.shape[0]), self.data.shape[1]), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : need] = rows
        self.n = need

    def array(self) -> np.ndarray:
        if self.n == self.data.shape[0]:
            return self.data
        return self.data[: self.n].copy()


class _DeviceRows:
    """The same store as :class:`_Rows` on a torch device (``keep_on_device=True``): rows are
    copied in (a later in-place op cannot change them) and never leave the device."""

    def __init__(self, d: int, dtype: torch.dtype, device: torch.device, hint: int):
        self.data = torch.empty((max(hint, 1), d), dtype=dtype, device=device)
        self.n = 0

    def append(self, rows: torch.Tensor) -> None:
        need = self.n + rows.shape[0]
        if need > self.data.shape[0]:
            grown = self.data.new_empty((max(need, 2 * self.data.shape[0]), self.data.shape[1]))
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : need] = rows.detach().reshape(rows.shape[0], -1).to(self.data.device, self.data.dtype)
        self.n = need

    def array(self) -> torch.Tensor:
        if self.n == self.data.shape[0]:
            return self.data
        return self.data[: self.n].clone()


def _resolve_layers(model: torch.nn.Module, layers: Any) -> dict[str, Any]:
    """name -> module or callable, in the caller's order."""
    if isinstance(layers, (str, torch.nn.Module)) or (callable(layers) and not isinstance(layers, Mapping)):
        layers = [layers]
    if isinstance(layers, Mapping):
        items = list(layers.items())
    else:
        try:
            specs = list(layers)
        except TypeError:
            raise TypeError(
                f"layers: expected a module name, a list of names/modules/callables or a dict, got "
                f"{type(layers).__name__}"
            ) from None
        module_names = {id(m): n for n, m in model.named_modules()}
        items = []
        for spec in specs:
            if isinstance(spec, str):
                items.append((spec, spec))
            elif isinstance(spec, torch.nn.Module):
                if id(spec) not in module_names:
                    raise ValueError(f"layers: the module {type(spec).__name__} is not a submodule of the model")
                items.append((module_names[id(spec)] or type(spec).__name__, spec))
            elif callable(spec):
                items.append((getattr(spec, "__name__", repr(spec)), spec))
            else:
                raise TypeError(f"layers: {spec!r} is neither a module name, a module nor a callable")
    if not items:
        raise ValueError("layers: no layer to capture")
    named = dict(model.named_modules())
    out: dict[str, Any] = {}
    for name, spec in items:
        if not isinstance(name, str):
            raise TypeError(f"layers: names must be strings, got {name!r}")
        if name in out:
            raise ValueError(f"layers: the name {name!r} appears twice (pass a dict to name callables)")
        if isinstance(spec, str):
            if spec not in named:
                close = difflib.get_close_matches(spec, [n for n in named if n], n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"layers: the model has no module named {spec!r}{hint} (names as in model.named_modules())"
                )
            spec = named[spec]
        elif not (isinstance(spec, torch.nn.Module) or callable(spec)):
            raise TypeError(f"layers: {name!r} must map to a module name, a module or a callable")
        out[name] = spec
    return out


def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def _to_device(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=True)
    if isinstance(inputs, np.ndarray):
        return torch.from_numpy(inputs).to(device)
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to_device(t, device) for t in inputs)
    if isinstance(inputs, Mapping):
        return {k: _to_device(v, device) for k, v in inputs.items()}
    return inputs


def _take(inputs: Any, n: int) -> Any:
    """The first n samples of a batch of inputs (tensor, tuple/list or dict of tensors)."""
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        return inputs[:n]
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_take(t, n) for t in inputs)
    if isinstance(inputs, Mapping):
        return {k: _take(v, n) for k, v in inputs.items()}
    return inputs


def _call(model: torch.nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _labels_of(labels: Any) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(
            f"data: labels must be a 1-D array of class ids per batch, got shape {arr.shape} (one-hot labels: "
            "take argmax first)"
        )
    if arr.dtype.kind not in "iub":
        raise TypeError(f"data: labels must be integer class ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


class _Transfer:
    """Copies captured tensors to host memory. CUDA tensors go through pinned buffers with
    non-blocking copies that overlap the next batch's forward; they are made numpy only once the
    copy's event has completed, so host memory holds at most one batch in flight."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.pending: list[tuple[Any, str, torch.Tensor, Any]] = []

    def copy(self, tensor: torch.Tensor, sink: Callable[[np.ndarray], None], key: str) -> None:
        flat = tensor.detach().reshape(tensor.shape[0], -1)
        if flat.device.type == "cuda":
            flat = flat.to(self.dtype)
            host = torch.empty(flat.shape, dtype=self.dtype, pin_memory=True)
            host.copy_(flat, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self.pending.append((sink, key, host, event))
        else:
            # A copy now: a later in-place op (ReLU(inplace=True)) must not change what was captured.
            sink(flat.to(device="cpu", dtype=self.dtype, copy=True).numpy())

    def drain(self, count: int | None = None) -> None:
        """Completes the oldest `count` copies (all by default), in order."""
        count = len(self.pending) if count is None else count
        for sink, _, host, event in self.pending[:count]:
            event.synchronize()
            sink(host.numpy())
        del self.pending[:count]


# The most passes per batch: a count of rows like the samples of one array (docs/spec.md §0.2).
MAX_PASSES = 2**32 - 1


def check_capture_options(
    n_passes: Any, stochastic: Any, max_samples: Any, progress: Any
) -> tuple[int, bool, int | None, bool | None]:
    """The options of :func:`capture` (also checked by the tracker when it is made), each a
    ValueError or TypeError naming it (docs/spec.md §0.4)."""
    stochastic = check_bool(stochastic, "stochastic")
    progress = check_optional_bool(progress, "progress")
    if isinstance(n_passes, (bool, np.bool_)) or not isinstance(n_passes, numbers.Integral) or int(n_passes) < 1:
        raise ValueError(f"n_passes: must be a positive integer, got {shown(n_passes)}")
    passes = int(n_passes)
    if passes > MAX_PASSES:
        raise ValueError(f"n_passes: at most {MAX_PASSES}, got {shown(passes)}")
    if passes > 1 and not stochastic:
        raise ValueError(
            "n_passes: repeated passes of a deterministic network give identical rows; set stochastic=True"
        )
    most: int | None = None
    if max_samples is not None:
        if (
            isinstance(max_samples, (bool, np.bool_))
            or not isinstance(max_samples, numbers.Integral)
            or int(max_samples) < 1
        ):
            raise ValueError(f"max_samples: must be a positive integer or None, got {shown(max_samples)}")
        most = int(max_samples)
    return passes, stochastic, most, progress


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        np_dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"dtype: must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if np_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: must be numpy.float32 or numpy.float64, got {np_dtype}")
    return np_dtype


def capture(
    model: torch.nn.Module,
    data: Iterable,
    layers: Any,
    *,
    device: Any = None,
    n_passes: int = 1,
    stochastic: bool = False,
    max_samples: int | None = None,
    dtype: Any = np.float32,
    progress: bool | None = True,
    keep_on_device: bool = False,
) -> Activations:
    """Activations of named layers over a data set, as numpy arrays (one row per input and pass).

    Forward hooks record each layer's output (flattened per sample) under ``torch.no_grad()``;
    the hooks are removed and every module's train/eval mode is restored afterwards, also when
    the forward raises.

    Parameters
    ----------
    model : torch.nn.Module
    data : a DataLoader or any iterable of ``(inputs, labels)`` batches; ``inputs`` may be a
        tensor, a tuple of tensors (``model(*inputs)``) or a dict (``model(**inputs)``).
    layers : names as in ``model.named_modules()``, submodules, or callables
        ``fn(inputs, outputs) -> Tensor`` evaluated on each batch's inputs and model outputs; a
        list, or a dict ``{name: spec}`` to choose the names.
    device : where the batches are sent (default: the model's device). The model must already be
        there.
    n_passes : int
        Forward passes per batch; only meaningful for a stochastic network (``stochastic=True``).
    stochastic : bool
        False: the whole model in eval mode (deterministic). True: eval mode except dropout-type
        layers (``nn.Dropout*``, :class:`GaussianDropout`, :class:`GaussianEncoder`), which keep
        sampling noise, as the paper measures noisy networks.
    max_samples : int, optional
        Stop after this many inputs (the last batch is cut).
    dtype : numpy.float32 (default) or numpy.float64.
    progress : bool or None — a tqdm progress bar (a widget in Jupyter) once the capture has run for more than a
        second (False: never).
    keep_on_device : bool
        False (default): numpy arrays in host memory. True: the layers, means and variances stay
        torch tensors of ``dtype`` on the device the batches run on (no copy to the host; labels and
        sample ids stay numpy), ready for the ``device=`` path of the metrics (docs/spec.md §8.5):
        ``gaussian_channel_mi(acts.means[name], acts.variances[name])`` then runs on that device.
        GPU memory then grows with the data set (R × d values per layer).

    For layers with a ``gaussian_moments`` method (:class:`GaussianDropout`,
    :class:`GaussianEncoder`) the exact mean and variance of Z | x are recorded as well
    (``Activations.means`` / ``.variances``), computed from the layer's input in float64-ready
    form, so :func:`repcompress.gaussian_channel_mi` needs no sampling of the channel.

    CUDA activations reach host memory through pinned buffers with non-blocking copies, one batch
    at a time, so GPU memory does not grow with the data set.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    n_passes, stochastic, max_samples, progress = check_capture_options(n_passes, stochastic, max_samples, progress)
    np_dtype = _float_dtype(dtype)
    keep_on_device = check_bool(keep_on_device, "keep_on_device")
    torch_dtype = torch.float32 if np_dtype == np.float32 else torch.float64
    specs = _resolve_layers(model, layers)
    if stochastic and not any(is_stochastic(m) for m in model.modules()):
        warnings.warn(
            "capture: stochastic=True, but the model has no dropout-type layer (nn.Dropout*, GaussianDropout, "
            "GaussianEncoder): every pass is deterministic",
            RuntimeWarning,
            stacklevel=2,
        )
    try:
        run_device = _model_device(model) if device is None else torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device: not a torch device: {device!r} ({exc})") from None
    model_device = _model_device(model)
    if any(True for _ in model.parameters()) and model_device != run_device:
        raise ValueError(f"device: the model is on {model_device}, not {run_device}; move it first (model.to(device))")

    loader: Any = data  # a DataLoader, or any iterable: sizes where it has them
    try:
        total_batches = len(loader)
    except TypeError:
        total_batches = 0
    try:
        size_hint = len(loader.dataset)
    except (AttributeError, TypeError):
        size_hint = 1024
    if max_samples is not None:
        size_hint = min(size_hint, max_samples)
    size_hint *= n_passes

    store: dict[str, dict[str, Any]] = {"layers": {}, "means": {}, "variances": {}}
    shapes: dict[str, tuple] = {}
    fired: dict[str, int] = {}
    transfer = _Transfer(torch_dtype)
    batch_no = 0
    state = {"n": 0}

    def keep(kind: str, name: str, tensor: Any) -> None:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"layers: {name!r} produced {type(tensor).__name__}, not a tensor (hook a submodule that "
                "returns one, or pass a callable that picks it)"
            )
        if tensor.dim() == 0:
            raise ValueError(f"layers: {name!r} produced a scalar; capture needs one row per sample")
        if tensor.shape[0] != state["n"]:
            raise ValueError(
                f"layers: {name!r} gave {tensor.shape[0]} rows for a batch of {state['n']} inputs; capture needs "
                "one row per input"
            )
        shape = tuple(tensor.shape[1:])
        if kind == "layers":
            if name not in shapes:
                shapes[name] = shape
            elif shapes[name] != shape:
                raise ValueError(
                    f"layers: {name!r} has per-sample shape {shape} in batch {batch_no}, {shapes[name]} before; "
                    "every batch must give the same shape"
                )
        rows = store[kind]
        width = int(np.prod(shape, dtype=np.int64))
        if keep_on_device:
            if name not in rows:
                rows[name] = _DeviceRows(width, torch_dtype, tensor.device, size_hint)
            rows[name].append(tensor)
            return
        if name not in rows:
            rows[name] = _Rows(width, np_dtype, size_hint)
        transfer.copy(tensor, rows[name].append, name)

    def make_hook(name: str) -> Callable:
        def hook(module: torch.nn.Module, args: tuple, output: Any) -> None:
            fired[name] = fired.get(name, 0) + 1
            if fired[name] > 1:
                raise RuntimeError(
                    f"layers: {name!r} ran twice in one forward pass (a shared module); capture one of its uses "
                    "through a wrapper module or a callable"
                )
            keep("layers", name, output)
            moments = getattr(module, "gaussian_moments", None)
            if moments is not None and args:
                mean, variance = moments(args[0])
                keep("means", name, mean)
                keep("variances", name, variance)

        return hook

    modes = {m: m.training for m in model.modules()}
    handles = []
    labels_out: list[np.ndarray] = []
    ids_out: list[np.ndarray] = []
    seen = 0
    bar = Progress(total_batches or 1, "capture", None if progress else False, after=1.0)
    try:
        model.eval()
        if stochastic:
            for m in model.modules():
                if is_stochastic(m):
                    m.train()
        for name, spec in specs.items():
            if isinstance(spec, torch.nn.Module):
                handles.append(spec.register_forward_hook(make_hook(name)))
        with torch.no_grad():
            for batch in data:
                if max_samples is not None and seen >= max_samples:
                    break
                if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                    raise TypeError("data: every batch must be an (inputs, labels) pair")
                inputs, labels = batch
                labels_np = _labels_of(labels)
                n = labels_np.shape[0]
                if max_samples is not None and seen + n > max_samples:
                    n = max_samples - seen
                    inputs, labels_np = _take(inputs, n), labels_np[:n]
                if n == 0:
                    continue
                inputs = _to_device(inputs, run_device)
                state["n"] = n
                for _ in range(n_passes):
                    fired.clear()
                    in_flight = len(transfer.pending)
                    outputs = _call(model, inputs)
                    for name, spec in specs.items():
                        if not isinstance(spec, torch.nn.Module):
                            keep("layers", name, spec(inputs, outputs))
                        elif name not in fired:
                            raise RuntimeError(f"layers: {name!r} did not run in the forward pass")
                    labels_out.append(labels_np)
                    ids_out.append(np.arange(seen, seen + n, dtype=np.int64))
                    # The previous pass's device-to-host copies overlapped this forward; finish them.
                    transfer.drain(in_flight)
                seen += n
                batch_no += 1
                bar.update(1)
        transfer.drain()
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.train(training)
        bar.close()
    if not labels_out:
        raise ValueError("data: no batches (the loader is empty)")
    return Activations(
        layers={name: store["layers"][name].array() for name in specs},
        labels=np.concatenate(labels_out),
        sample_ids=np.concatenate(ids_out),
        means={k: v.array() for k, v in store["means"].items()},
        variances={k: v.array() for k, v in store["variances"].items()},
        shapes=shapes,
        n_passes=int(n_passes),
    )
