"""ONNX export: every zoo model and every layer type, run by ONNX Runtime against fastcnn."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from fastcnn.cli import EXIT_ERROR, main
from fastcnn.layers import LAYERS, Layer

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package (fastcnn[onnx])")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests run graphs with onnxruntime")

from fastcnn.export import EXPORTERS, OPSET, OnnxGraph, to_onnx  # noqa: E402
from fastcnn.zoo.compat import LAYERS as COMPAT_LAYERS  # noqa: E402

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
ZOO = [(name, {}) for name in fastcnn.zoo.names()] + [("numpy_mlp", {"compat": True})]


def run_onnx(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": np.ascontiguousarray(x, dtype=np.float32)})[0]


def fastcnn_output(model, x):
    return np.array(fastcnn.to_numpy(model.forward(x)))


@pytest.fixture(scope="module")
def mnist_images():
    try:
        x, _ = fastcnn.datasets.load("mnist", "test", download=False, progress=False)
    except fastcnn.DatasetError as exc:
        pytest.skip(f"real MNIST images not found: {exc}")
    return (x[:16].astype(np.float32) / 255)[:, None]


@pytest.mark.parametrize("name,options", ZOO, ids=[n + ("_compat" if o else "") for n, o in ZOO])
def test_zoo_model_runs_in_onnx_runtime_like_fastcnn(name, options, mnist_images):
    model = fastcnn.zoo.get(name, seed=3, **options)
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    random = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    for x in (random, mnist_images):
        np.testing.assert_allclose(run_onnx(proto, x), fastcnn_output(model, x), **TOLERANCE)


def every_layer_model():
    """One model holding every layer type, in unusual settings (stride, padding, no bias,
    fused activations, a non-square kernel, overlapping pools, batch norms whose running
    statistics are not the initial ones)."""
    model = fastcnn.Sequential([
        COMPAT_LAYERS["RawPixels"](name="raw"),
        fastcnn.Conv2D(2, 4, (3, 2), stride=2, padding=1, activation="sigmoid", bias=False,
                       name="conv_a"),
        fastcnn.Conv2D(4, 6, 3, padding="same", activation="relu", name="conv_b"),
        fastcnn.BatchNorm2d(name="bn2d"),
        fastcnn.ReLU(name="relu"),
        fastcnn.AvgPool2D(2, stride=1, name="avg"),
        fastcnn.MaxPool2D(3, stride=2, name="max"),
        fastcnn.Dropout(0.3, name="drop"),
        fastcnn.Conv2D(6, 3, padding=1, activation="tanh", name="conv_c"),
        fastcnn.MaxPool2D(3, stride=1, padding=1, name="max_pad"),
        fastcnn.AvgPool2D(2, stride=1, padding=1, name="avg_pad"),
        fastcnn.LeakyReLU(0.1, name="leaky"), fastcnn.ELU(0.7, name="elu"),
        fastcnn.Dropout2d(0.2, name="drop2d"), fastcnn.Tanh(name="tanh"),
        fastcnn.GlobalAveragePooling2D(name="gap"),
        fastcnn.Flatten(name="flat"),
        fastcnn.Dense(6, 12, activation="relu", name="fc_a"),
        fastcnn.BatchNorm1d(name="bn1d"), fastcnn.BatchNormalization(name="keras_bn"),
        fastcnn.GELU(name="gelu"), fastcnn.GELU("tanh", name="gelu_tanh"),
        fastcnn.Dense(12, activation="elu", name="fc_elu"),
        fastcnn.Dense(12, activation="gelu", name="fc_gelu"),
        fastcnn.Dense(12, activation="leaky_relu", name="fc_leaky"),
        fastcnn.Sigmoid(name="sig"),
        fastcnn.Dense(12, 9, bias=False, activation="sigmoid", name="fc_b"),
        fastcnn.Dense(9, 5, name="fc_c"),
        fastcnn.LogSoftmax(name="log_soft"),
        fastcnn.Softmax(name="soft"),
        COMPAT_LAYERS["BatchAxisSoftmax"](name="batch_soft"),
    ], seed=1, input_shape=(2, 15, 9), name="every_layer")
    rng = np.random.default_rng(5)
    for layer in model.layers:
        if "running_mean" in layer.get_state():
            channels = layer.num_features
            layer.set_state({"running_mean": rng.normal(size=channels).astype(np.float32),
                             "running_var": rng.uniform(0.5, 2, channels).astype(np.float32),
                             "num_batches_tracked": np.array(3, dtype=np.int64)})
            layer.params["weight"].assign(rng.normal(size=channels).astype(np.float32))
            layer.params["bias"].assign(rng.normal(size=channels).astype(np.float32))
    return model


def fastcnn_layer_classes() -> set:
    """fastcnn's own layer classes (the registry also holds the ones tests define)."""
    return {cls for cls in {**LAYERS, **COMPAT_LAYERS}.values()
            if cls.__module__.startswith("fastcnn.")}


def test_every_layer_class_has_an_exporter():
    missing = [cls.__name__ for cls in fastcnn_layer_classes() if cls not in EXPORTERS]
    assert not missing, f"layers without an ONNX exporter (add one in fastcnn/export): {missing}"


def test_every_layer_type_runs_in_onnx_runtime_like_fastcnn():
    model = every_layer_model()
    covered = {type(layer) for layer in model.layers}
    # (a nested Sequential: test_a_nested_model_exports_with_prefixed_names)
    assert covered >= fastcnn_layer_classes() - {fastcnn.Sequential}, \
        "add the new layer type to every_layer_model"
    x = np.random.default_rng(2).normal(size=(4, 2, 15, 9)).astype(np.float32) * 0.01
    np.testing.assert_allclose(run_onnx(to_onnx(model), x), fastcnn_output(model, x), **TOLERANCE)


def test_the_batch_axis_is_dynamic_and_the_opset_recent():
    model = fastcnn.zoo.get("keras_kfold_cnn", seed=0)
    proto = to_onnx(model)
    assert proto.opset_import[0].version == OPSET >= 21
    for value in (proto.graph.input[0], proto.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    for batch in (1, 7):
        x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
        assert run_onnx(proto, x).shape == (batch, 10)


def test_nodes_carry_the_layer_names_and_weights_the_state_dict_names():
    model = fastcnn.zoo.get("pytorch_cnn", seed=0)
    proto = to_onnx(model)
    nodes = {node.name for node in proto.graph.node}
    assert {layer.name for layer in model.layers} <= nodes
    weights = {tensor.name for tensor in proto.graph.initializer}
    assert set(model.state_dict()) <= weights
    by_name = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    np.testing.assert_array_equal(by_name["conv_1.weight"], model.state_dict()["conv_1.weight"])


def test_probabilities_option_gives_what_predict_gives(mnist_images):
    model = fastcnn.zoo.get("pytorch_cnn", seed=0)
    proto = to_onnx(model, probabilities=True)
    np.testing.assert_allclose(run_onnx(proto, mnist_images), model.predict(mnist_images), **TOLERANCE)
    assert {p.key: p.value for p in proto.metadata_props}["output"] == "probabilities"
    assert {p.key: p.value for p in to_onnx(model).metadata_props}["output"] == "logits"


def test_the_dataset_description_travels_in_the_metadata():
    model = fastcnn.zoo.get("kmnist_cnn", seed=0)
    model.data_info = fastcnn.datasets.data_info("kmnist")
    props = {p.key: p.value for p in to_onnx(model).metadata_props}
    assert "\u304a" in props["data"]


class Square(Layer):
    """x * x: a layer fastcnn has no ONNX exporter for."""

    def forward(self, x, training=False):
        return x * x


def test_a_layer_with_no_onnx_form_is_an_error_naming_it(tmp_path):
    model = fastcnn.Sequential([fastcnn.Flatten(), Square(name="squarer"), fastcnn.Dense(4, 2)],
                               seed=0, input_shape=(1, 2, 2))
    with pytest.raises(fastcnn.ExportError, match=r"'squarer' \(Square\) has no ONNX form"):
        model.export_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_nested_model_exports_with_prefixed_names():
    inner = fastcnn.Sequential([fastcnn.Conv2D(1, 3, 3, name="conv"), fastcnn.ReLU(name="relu"),
                                fastcnn.Flatten(name="flat")], seed=0, input_shape=(1, 6, 6),
                               name="block")
    outer = fastcnn.Sequential([fastcnn.Dense(48, 4, name="head")], seed=0, input_shape=(48,))
    graph = OnnxGraph()
    out = graph.layers([inner] + outer.layers, "input")
    assert [node.name for node in graph.nodes] == ["block.conv", "block.relu", "block.flat", "head"]
    value = lambda name, shape: onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(graph.nodes, "nested", [value("input", ["batch", 1, 6, 6])],
                               [value(out, ["batch", 4])], graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    x = np.random.default_rng(0).random((3, 1, 6, 6), dtype=np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = fastcnn_output(outer, fastcnn_output(inner, x))
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, **TOLERANCE)


def test_cli_export_writes_a_checked_onnx_file(tmp_path, capsys, mnist_images):
    model = fastcnn.zoo.get("kmnist_cnn", seed=0)
    model.save(tmp_path / "model.npz")
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")]) == 0
    assert "opset" in capsys.readouterr().out
    proto = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(proto, full_check=True)
    np.testing.assert_allclose(run_onnx(proto, mnist_images), fastcnn_output(model, mnist_images),
                               **TOLERANCE)


def test_cli_export_of_a_file_that_is_no_model_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "notes.npz").write_text("hello")
    assert main(["export", str(tmp_path / "notes.npz"), str(tmp_path / "m.onnx")]) == EXIT_ERROR
    assert "not a saved fastcnn model" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
