"""Build the ONNX graph of `BiLSTMClassifier` from its weights.

The graph is written with `onnx.helper` rather than traced: the ONNX LSTM operator takes
`sequence_lens`, which reproduces PyTorch's packed sequences exactly (the backward direction
starts at each row's last real token), and no tracer has to understand packing. Parity with
PyTorch is checked after every export (`exporter.parity`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_IDS = "token_ids"
INPUT_LENGTHS = "lengths"
INPUT_CHUNK_ENDS = "chunk_ends"
OUTPUT_LOGITS = "logits"
OPSET = 17


def _torch_to_onnx_gates(weight: np.ndarray) -> np.ndarray:
    """PyTorch orders gates (input, forget, cell, output); ONNX (input, output, forget, cell)."""
    i, f, g, o = np.split(weight, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def _lstm_initializers(state: dict[str, np.ndarray]) -> list[onnx.TensorProto]:
    w, r, b = [], [], []
    for prefix in ("lstm_fwd", "lstm_bwd"):  # ONNX direction 0, 1
        w.append(_torch_to_onnx_gates(state[f"{prefix}.weight_ih_l0"]))
        r.append(_torch_to_onnx_gates(state[f"{prefix}.weight_hh_l0"]))
        b.append(
            np.concatenate(
                [
                    _torch_to_onnx_gates(state[f"{prefix}.bias_ih_l0"]),
                    _torch_to_onnx_gates(state[f"{prefix}.bias_hh_l0"]),
                ]
            )
        )
    return [
        numpy_helper.from_array(np.stack(w).astype(np.float32), "lstm_W"),
        numpy_helper.from_array(np.stack(r).astype(np.float32), "lstm_R"),
        numpy_helper.from_array(np.stack(b).astype(np.float32), "lstm_B"),
    ]


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(value, name)


def _pooling_nodes(pooling: str, hidden2: int) -> list[onnx.NodeProto]:
    """seq_out [B,T,2H] and mask [B,T,1] -> pooled [B,2H]."""
    if pooling == "mean":
        return [
            helper.make_node("Mul", ["seq_out", "mask"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
            helper.make_node("ReduceSum", ["mask", "axis1"], ["count"], keepdims=0),
            helper.make_node("Max", ["count", "one_f"], ["count_safe"]),
            helper.make_node("Div", ["summed", "count_safe"], ["pooled"]),
        ]
    return [
        helper.make_node("Tanh", ["seq_out"], ["tanh_out"]),
        helper.make_node("MatMul", ["tanh_out", "att_W"], ["att_raw"]),
        helper.make_node("Add", ["att_raw", "att_b"], ["att_scores"]),
        # Padding gets -1e9 before the softmax, exactly like masked_fill in PyTorch.
        helper.make_node("Sub", ["one_f", "mask"], ["inv_mask"]),
        helper.make_node("Mul", ["inv_mask", "neg_big"], ["att_penalty"]),
        helper.make_node("Mul", ["att_scores", "mask"], ["att_kept"]),
        helper.make_node("Add", ["att_kept", "att_penalty"], ["att_masked"]),
        helper.make_node("Softmax", ["att_masked"], ["att_weights"], axis=1),
        helper.make_node("Mul", ["seq_out", "att_weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axis1"], ["pooled"], keepdims=0),
    ]


def build_model(
    state: dict[str, np.ndarray], *, pooling: str, pad_id: int, hidden_dim: int
) -> onnx.ModelProto:
    """state: PyTorch state_dict as numpy arrays. Returns a checked ONNX model."""
    num_outputs = state["head.weight"].shape[0]
    initializers = [
        numpy_helper.from_array(state["embedding.weight"].astype(np.float32), "embedding"),
        *_lstm_initializers(state),
        _const("head_W", state["head.weight"].T.astype(np.float32).copy()),
        _const("head_b", state["head.bias"].astype(np.float32)),
        _const("pad_id", np.array(pad_id, dtype=np.int64)),
        _const("axis1", np.array([1], dtype=np.int64)),
        _const("one_f", np.array(1.0, dtype=np.float32)),
        _const("bt2h_shape", np.array([0, 0, -1], dtype=np.int64)),
    ]
    if pooling == "attention":
        initializers += [
            _const("att_W", state["attention.weight"].T.astype(np.float32).copy()),
            _const("att_b", state["attention.bias"].astype(np.float32)),
            _const("neg_big", np.array(-1e9, dtype=np.float32)),
        ]
    nodes = [
        helper.make_node("Gather", ["embedding", INPUT_IDS], ["embedded"]),
        helper.make_node("Transpose", ["embedded"], ["time_major"], perm=[1, 0, 2]),
        helper.make_node("Cast", [INPUT_LENGTHS], ["seq_lens"], to=TensorProto.INT32),
        helper.make_node(
            "LSTM",
            ["time_major", "lstm_W", "lstm_R", "lstm_B", "seq_lens"],
            ["lstm_Y"],
            direction="bidirectional",
            hidden_size=hidden_dim,
        ),
        # Y is [T, 2, B, H]; make it [B, T, 2H] with forward features first, as in PyTorch.
        helper.make_node("Transpose", ["lstm_Y"], ["batch_major"], perm=[2, 0, 1, 3]),
        helper.make_node("Reshape", ["batch_major", "bt2h_shape"], ["seq_out"]),
        helper.make_node("Equal", [INPUT_IDS, "pad_id"], ["is_pad"]),
        helper.make_node("Not", ["is_pad"], ["not_pad"]),
        helper.make_node("Cast", ["not_pad"], ["mask_bt"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_bt", "minus1"], ["mask"]),
        *_pooling_nodes(pooling, 2 * hidden_dim),
        helper.make_node("Gemm", ["pooled", "head_W", "head_b"], [OUTPUT_LOGITS]),
    ]
    initializers.append(_const("minus1", np.array([-1], dtype=np.int64)))
    graph = helper.make_graph(
        nodes,
        "bilstm_classifier",
        inputs=[
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(INPUT_LENGTHS, TensorProto.INT64, ["batch"]),
        ],
        outputs=[
            helper.make_tensor_value_info(OUTPUT_LOGITS, TensorProto.FLOAT, ["batch", num_outputs])
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sentiment-stream"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def add_chunk_loop(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same classifier with a third input, `chunk_ends`: a batch run in chunks of rows.

    Rows [0, e0), [e0, e1), ... each go through the original graph in an ONNX Loop, cut to the
    chunk's longest row: one onnxruntime call for a batch padded per chunk, not to its longest
    row. The caller sorts rows by length; the result does not depend on it. `chunk_ends` = [N]
    runs the batch as one chunk, exactly as the original graph.

    Why one call: every call into onnxruntime from Python releases the GIL and has to take it
    back, which beside a busy thread waits up to the switch interval; one call per chunk made
    the serving thread wait longer than the model ran (docs/performance.md).
    Works on the INT8 graph too. A model that already has the loop is returned unchanged.
    """
    graph = model.graph
    if INPUT_CHUNK_ENDS in {value.name for value in graph.input}:
        return model
    num_outputs = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    renamed = {INPUT_IDS: "chunk_token_ids", INPUT_LENGTHS: "chunk_lengths",
               OUTPUT_LOGITS: "chunk_logits"}  # fmt: skip
    chunk_nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [renamed.get(name, name) for name in node.input]
        copy.output[:] = [renamed.get(name, name) for name in node.output]
        chunk_nodes.append(copy)
    body = helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["chunk", "loop_axis0"], ["chunk_1d"]),
            helper.make_node("Gather", [INPUT_CHUNK_ENDS, "chunk_1d"], ["end"]),
            helper.make_node(
                "Slice", [INPUT_LENGTHS, "start", "end", "loop_axis0"], ["chunk_lengths"]
            ),
            helper.make_node("ReduceMax", ["chunk_lengths"], ["width"], axes=[0], keepdims=1),
            helper.make_node("Concat", ["start", "loop_zero"], ["ids_starts"], axis=0),
            helper.make_node("Concat", ["end", "width"], ["ids_ends"], axis=0),
            helper.make_node(
                "Slice", [INPUT_IDS, "ids_starts", "ids_ends", "loop_axes01"], ["chunk_token_ids"]
            ),
            *chunk_nodes,
            helper.make_node("Concat", ["logits_so_far", "chunk_logits"], ["logits_now"], axis=0),
            helper.make_node("Identity", ["keep_going"], ["keep_going_out"]),
        ],
        "chunk",
        inputs=[
            helper.make_tensor_value_info("chunk", TensorProto.INT64, []),
            helper.make_tensor_value_info("keep_going", TensorProto.BOOL, []),
            helper.make_tensor_value_info("start", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("logits_so_far", TensorProto.FLOAT, [None, num_outputs]),
        ],
        outputs=[
            helper.make_tensor_value_info("keep_going_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("end", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("logits_now", TensorProto.FLOAT, [None, num_outputs]),
        ],
    )
    looped = helper.make_graph(
        [
            helper.make_node("Size", [INPUT_CHUNK_ENDS], ["chunk_count"]),
            helper.make_node(
                "Loop",
                ["chunk_count", "", "loop_zero", "no_logits"],
                ["rows_done", OUTPUT_LOGITS],
                body=body,
            ),
        ],
        graph.name,
        inputs=[
            *graph.input,
            helper.make_tensor_value_info(INPUT_CHUNK_ENDS, TensorProto.INT64, ["chunks"]),
        ],
        outputs=list(graph.output),
        initializer=[
            *graph.initializer,
            _const("loop_zero", np.array([0], dtype=np.int64)),
            _const("loop_axis0", np.array([0], dtype=np.int64)),
            _const("loop_axes01", np.array([0, 1], dtype=np.int64)),
            _const("no_logits", np.zeros((0, num_outputs), dtype=np.float32)),
        ],
    )
    result = helper.make_model(looped, opset_imports=list(model.opset_import),
                               producer_name=model.producer_name)  # fmt: skip
    result.ir_version = model.ir_version
    onnx.checker.check_model(result, full_check=True)
    return result
