"""Student builders: a narrower copy (width multiplier), a shallower copy (layers
dropped, or every k-th block of a stack kept, as for BERT-family encoders).

Every builder returns a *new* model with fresh, seeded weights (a student learns from
the teacher; it does not inherit its weights, except ``keep_every`` which keeps the
kept layers' weights as DistilBERT does) and records an edit, so a saved student
reloads with ``netpress.techniques.edits.load_edited``.

Width scaling works on chain models (layers run in the order they are registered:
lenet-300-100, lenet5-caffe, lenet5, user MLP/CNN chains) and on ``resnet-small``
through its ``width`` argument; anything else is refused with a clear error after a
test forward pass, rather than silently building a broken net.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...batches import call
from ...errors import ModelError
from ...zoo import ResNetSmall
from ..edits import edit_op, edits_of, record_edit

_SCALED = (nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d)


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _chain_scale(model: nn.Module, width: float) -> nn.Module:
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _SCALED)]
    weighted = [n for n, m in layers if isinstance(m, nn.Linear | nn.Conv2d)]
    if not weighted:
        raise ModelError("width scaling found no Linear or Conv2d layer")
    last = weighted[-1]
    prev_old = prev_new = None  # channels/features out of the previous weighted layer
    for name, m in layers:
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            new = type(m)(prev_new, eps=m.eps, momentum=m.momentum, affine=m.affine,
                          track_running_stats=m.track_running_stats)
        elif isinstance(m, nn.Conv2d):
            cin = m.in_channels if prev_new is None else prev_new
            cout = m.out_channels if name == last else _scaled(m.out_channels, width)
            if m.groups not in (1, m.in_channels):
                raise ModelError(f"width scaling cannot resize grouped conv {name}")
            groups = 1 if m.groups == 1 else cin
            if groups != 1:
                cout = cin
            new = nn.Conv2d(cin, cout, m.kernel_size, stride=m.stride, padding=m.padding,
                            dilation=m.dilation, groups=groups, bias=m.bias is not None,
                            padding_mode=m.padding_mode)
            prev_old, prev_new = m.out_channels, cout
        else:
            fin = m.in_features
            if prev_new is not None:
                if fin % prev_old:
                    raise ModelError(f"width scaling: {name} takes {fin} inputs, not a multiple "
                                     f"of the {prev_old} outputs before it; not a chain model")
                fin = fin // prev_old * prev_new
            fout = m.out_features if name == last else _scaled(m.out_features, width)
            new = nn.Linear(fin, fout, bias=m.bias is not None)
            prev_old, prev_new = m.out_features, fout
        model.set_submodule(name, new)
    return model


def scale_width(model: nn.Module, width: float, example: torch.Tensor | None = None,
                seed: int = 0) -> nn.Module:
    """A new model with every hidden layer's channels/neurons × ``width`` (fresh weights).

    The output layer keeps its size. ``example`` (one input batch) checks the result runs.

    Example:
        >>> from netpress.zoo import build_model
        >>> s = scale_width(build_model("lenet5-caffe"), 0.4)
        >>> sum(p.numel() for p in s.parameters())
        70438
    """
    if not 0.0 < width <= 1.0:
        raise ModelError(f"width must be in (0, 1], got {width}")
    if edits_of(model):
        raise ModelError("build the width student from the original model, before other edits")
    torch.manual_seed(seed)
    if isinstance(model, ResNetSmall):
        student = ResNetSmall(num_classes=model.fc.out_features,
                              width=_scaled(model.stem[0][0].out_channels, width))
    else:
        student = _chain_scale(copy.deepcopy(model), width)
    if example is not None:
        try:
            with torch.no_grad():
                out, ref = call(student.eval(), example), call(model.eval(), example)
        except RuntimeError as e:
            raise ModelError(f"width scaling does not fit this architecture ({e}); build the "
                             "student yourself and pass it as --student") from None
        if out.shape != ref.shape:
            raise ModelError("width scaling changed the output shape; pass --student instead")
    return record_edit(student, {"op": "width", "width": width}, inherit=[])


@edit_op("width")
def _replay_width(model: nn.Module, edit: dict) -> nn.Module:
    return scale_width(model, edit["width"])


def drop_layers(model: nn.Module, names: list[str] | tuple[str, ...],
                example: torch.Tensor | None = None) -> nn.Module:
    """Depth reduction: replace shape-preserving blocks ``names`` by ``nn.Identity``.

    Example:
        >>> from netpress.zoo import build_model
        >>> s = drop_layers(build_model("resnet-small"), ["layer1"], torch.zeros(1, 1, 28, 28))
        >>> type(s.layer1).__name__
        'Identity'
    """
    student = copy.deepcopy(model)
    mods = dict(student.named_modules())
    for n in names:
        if n not in mods:
            raise ModelError(f"no layer named {n!r} to drop; layers: {', '.join(list(mods)[1:8])}…")
        student.set_submodule(n, nn.Identity())
    if example is not None:
        try:
            with torch.no_grad():
                ok = call(student.eval(), example).shape == call(model.eval(), example).shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ModelError(f"dropping {list(names)} breaks the model: only blocks whose output "
                             "shape equals their input shape can be dropped")
    return record_edit(student, {"op": "drop", "names": list(names)})


@edit_op("drop")
def _replay_drop(model: nn.Module, edit: dict) -> nn.Module:
    for n in edit["names"]:
        model.set_submodule(n, nn.Identity())
    return model


def keep_every(model: nn.Module, path: str, k: int) -> nn.Module:
    """Keep layers 0, k, 2k, … of the ``nn.ModuleList`` at ``path`` (e.g. a BERT
    encoder's ``encoder.layer``), with their weights, as DistilBERT initialises its student.

    Example:
        >>> enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 4,
        ...                             enable_nested_tensor=False)
        >>> len(keep_every(enc, "layers", 2).layers)
        2
    """
    student = copy.deepcopy(model)
    _keep(student, path, k)
    return record_edit(student, {"op": "keep_every", "path": path, "k": k})


def _keep(model: nn.Module, path: str, k: int) -> None:
    try:
        stack = model.get_submodule(path)
    except AttributeError:
        stack = None
    if not isinstance(stack, nn.ModuleList):
        raise ModelError(f"{path!r} is not a ModuleList of layers (for BERT use 'encoder.layer')")
    if k < 1:
        raise ModelError(f"k must be ≥ 1, got {k}")
    model.set_submodule(path, nn.ModuleList([m for i, m in enumerate(stack) if i % k == 0]))
    for holder in (model, getattr(model, "config", None)):
        if holder is not None and hasattr(holder, "num_hidden_layers"):
            holder.num_hidden_layers = len(model.get_submodule(path))
    if hasattr(model, "num_layers") and isinstance(model.num_layers, int):
        model.num_layers = len(model.get_submodule(path))


@edit_op("keep_every")
def _replay_keep(model: nn.Module, edit: dict) -> nn.Module:
    _keep(model, edit["path"], edit["k"])
    return model


def prune_student(teacher: nn.Module, ratio: float, ctx, importance: str = "l1") -> nn.Module:
    """A student made by structured pruning (issue 3's ``StructuredPrune``, Torch-Pruning):
    a copy of the teacher with ``ratio`` of every hidden layer's channels/neurons removed,
    keeping the surviving weights as the student's starting point.

    Example:
        >>> s = prune_student(teacher, 0.5, ctx)  # doctest: +SKIP
    """
    from ..prune.structured import StructuredPrune, structured_prune

    if edits_of(teacher):
        raise ModelError("prune the original model, before other edits")
    student = structured_prune(copy.deepcopy(teacher), StructuredPrune(ratio, importance=importance),
                               ctx)
    shapes = {k: list(v.shape) for k, v in student.state_dict().items()}
    return record_edit(student, {"op": "resize", "shapes": shapes}, inherit=[])


@edit_op("resize")
def _replay_resize(model: nn.Module, edit: dict) -> nn.Module:
    from ..prune.resize import resize_to_state

    return resize_to_state(model, {k: torch.empty(s, device="meta")
                                   for k, s in edit["shapes"].items()})
