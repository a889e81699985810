import pytest
import torch
from torch import nn

from netpress.errors import ModelError
from netpress.profile import count_params
from netpress.techniques.distill import drop_layers, keep_every, scale_width
from netpress.techniques.edits import load_edited, save_edited
from netpress.zoo import build_model

X = torch.zeros(2, 1, 28, 28)


@pytest.mark.parametrize("spec, width, params", [
    ("lenet-300-100", 0.5, 784 * 150 + 150 + 150 * 50 + 50 + 50 * 10 + 10),
    ("lenet5-caffe", 0.4, 208 + (8 * 20 * 25 + 20) + (320 * 200 + 200) + (200 * 10 + 10)),
    ("lenet5", 0.5, (3 * 25 + 3) + (3 * 8 * 25 + 8) + (200 * 60 + 60) + (60 * 42 + 42)
     + (42 * 10 + 10)),
])
def test_width_student_counts(spec, width, params):
    teacher = build_model(spec)
    student = scale_width(teacher, width, X)
    assert count_params(student) == params
    assert student(X).shape == teacher(X).shape


def test_lenet5_caffe_student_is_over_5x_smaller():
    teacher = build_model("lenet5-caffe")
    assert count_params(teacher) / count_params(scale_width(teacher, 0.4, X)) > 6.1


def test_resnet_width_and_depth():
    teacher = build_model("resnet-small")
    narrow = scale_width(teacher, 0.5, X)
    assert narrow.stem[0][0].out_channels == teacher.stem[0][0].out_channels // 2
    assert narrow(X).shape == (2, 10)
    shallow = drop_layers(teacher, ["layer1"], X)
    assert count_params(shallow) < count_params(teacher) and shallow(X).shape == (2, 10)
    with pytest.raises(ModelError, match="only blocks whose output shape"):
        drop_layers(teacher, ["layer2"], X)


def test_non_chain_model_is_refused():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(4, 6)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            return self.head(self.a(x) + self.b(x))

    with pytest.raises(ModelError, match="not a chain model"):
        scale_width(Branchy(), 0.5, torch.zeros(1, 4))


def test_keep_every_kth_layer_of_an_encoder():
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 6,
                                enable_nested_tensor=False)
    small = keep_every(enc, "layers", 3)
    assert len(small.layers) == 2
    assert torch.equal(small.layers[1].linear1.weight, enc.layers[3].linear1.weight)
    assert small.eval()(torch.randn(2, 5, 8)).shape == (2, 5, 8)
    with pytest.raises(ModelError, match="ModuleList"):
        keep_every(enc, "norm", 2)


def test_student_round_trips_through_save_and_load(tmp_path):
    torch.manual_seed(1)
    student = drop_layers(scale_width(build_model("resnet-small"), 0.5, X), ["layer1"], X)
    path = save_edited(student, tmp_path / "s.safetensors", "resnet-small")
    again = load_edited(path)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(again.eval()(x), student.eval()(x))


def test_pruned_student_keeps_weights_and_reloads(tmp_path, digits):
    from netpress.context import Context
    from netpress.techniques.distill import prune_student

    torch.manual_seed(0)
    teacher = build_model("lenet5-caffe")
    student = prune_student(teacher, 0.5, Context(digits))
    assert (student.conv1.out_channels, student.fc1.out_features) == (10, 250)
    assert count_params(student) < count_params(teacher) / 3
    path = save_edited(student, tmp_path / "p.safetensors", "lenet5-caffe")
    again = load_edited(path)
    x = digits.test[0][:4]
    with torch.no_grad():
        assert torch.equal(again(x), student(x))
