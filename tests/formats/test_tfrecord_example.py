"""The tf.train.Example codec against the protobuf runtime (messages built from example.proto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detforge.errors import DetforgeError
from detforge.formats.tfrecord.example import (
    bytes_feature,
    bytes_values,
    decode_example,
    encode_example,
    float_feature,
    float_values,
    int64_feature,
    int64_values,
)
from detforge.formats.tfrecord.framing import read_records


def _example_class(packed: bool = True) -> Any:
    """``tf.train.Example`` as a protobuf runtime class, from the .proto definitions."""
    from google.protobuf import (  # type: ignore[import-untyped]
        descriptor_pb2,
        descriptor_pool,
        message_factory,
    )

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name=f"example_{packed}.proto", package=f"t{int(packed)}", syntax="proto3"
    )

    def msg(name: str, *fields: tuple[str, int, int, int, str]) -> descriptor_pb2.DescriptorProto:
        m = fdp.message_type.add(name=name)
        for fname, number, label, ftype, tname in fields:
            f = m.field.add(name=fname, number=number, label=label, type=ftype)
            if tname:
                f.type_name = tname
            if ftype in (F.TYPE_FLOAT, F.TYPE_INT64) and label == F.LABEL_REPEATED:
                f.options.packed = packed
        return m

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    pkg = f".t{int(packed)}"
    msg("BytesList", ("value", 1, rep, F.TYPE_BYTES, ""))
    msg("FloatList", ("value", 1, rep, F.TYPE_FLOAT, ""))
    msg("Int64List", ("value", 1, rep, F.TYPE_INT64, ""))
    feature = msg(
        "Feature",
        ("bytes_list", 1, opt, F.TYPE_MESSAGE, f"{pkg}.BytesList"),
        ("float_list", 2, opt, F.TYPE_MESSAGE, f"{pkg}.FloatList"),
        ("int64_list", 3, opt, F.TYPE_MESSAGE, f"{pkg}.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for f in feature.field:
        f.oneof_index = 0
    features = msg("Features", ("feature", 1, rep, F.TYPE_MESSAGE, f"{pkg}.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=opt, type=F.TYPE_STRING)
    entry.field.add(
        name="value", number=2, label=opt, type=F.TYPE_MESSAGE, type_name=f"{pkg}.Feature"
    )
    msg("Example", ("features", 1, opt, F.TYPE_MESSAGE, f"{pkg}.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"t{int(packed)}.Example"))


def _sample() -> dict[str, Any]:
    return {
        "image/encoded": bytes_feature([bytes(range(256)) * 3]),
        "image/filename": bytes_feature(["ünïcode name.jpg"]),
        "image/object/bbox/xmin": float_feature([0.0, 0.125, 0.333333, 1.0]),
        "image/object/class/label": int64_feature([1, 2, 300, -5, 2**40]),
        "image/object/class/text": bytes_feature([b"a", b"", b"c d"]),
        "empty/floats": float_feature([]),
    }


def test_encoding_parses_in_protobuf_runtime() -> None:
    Example = _example_class()
    msg = Example()
    msg.ParseFromString(encode_example(_sample()))
    feat = msg.features.feature
    assert feat["image/encoded"].bytes_list.value[0] == bytes(range(256)) * 3
    assert feat["image/filename"].bytes_list.value[0] == "ünïcode name.jpg".encode()
    assert list(feat["image/object/class/label"].int64_list.value) == [1, 2, 300, -5, 2**40]
    np.testing.assert_array_equal(
        feat["image/object/bbox/xmin"].float_list.value,
        np.array([0.0, 0.125, 0.333333, 1.0], dtype=np.float32),
    )
    assert list(feat["image/object/class/text"].bytes_list.value) == [b"a", b"", b"c d"]
    assert feat["empty/floats"].WhichOneof("kind") == "float_list"


@pytest.mark.parametrize("packed", [True, False])
def test_decodes_protobuf_runtime_output_packed_and_unpacked(packed: bool) -> None:
    Example = _example_class(packed)
    msg = Example()
    fm = msg.features.feature
    fm["f"].float_list.value.extend([1.5, -2.25, 3.0e-7])
    fm["i"].int64_list.value.extend([0, 1, -1, 2**62])
    fm["b"].bytes_list.value.extend([b"x", b"yz"])
    data = msg.SerializeToString()
    ex = decode_example(data)
    assert float_values(ex, "f") == pytest.approx([1.5, -2.25, 3.0e-7], rel=1e-7)
    assert int64_values(ex, "i") == [0, 1, -1, 2**62]
    assert bytes_values(ex, "b") == [b"x", b"yz"]
    assert float_values(ex, "missing") == []
    with pytest.raises(DetforgeError, match="expected bytes"):
        bytes_values(ex, "f")


def test_tensorflow_records_agree_with_protobuf_runtime(ref_data: Path) -> None:
    Example = _example_class()
    path = ref_data / "raccoon-tfrecord" / "test.record"
    for data in list(read_records(path))[:5]:
        ours = decode_example(data)
        ref = Example()
        ref.ParseFromString(data)
        assert set(ours) == set(ref.features.feature)
        for key, feat in ref.features.feature.items():
            kind = feat.WhichOneof("kind")
            values = list(getattr(feat, kind).value)
            assert (
                ours[key].values == pytest.approx(values)
                if kind == "float_list"
                else (ours[key].values == values)
            )
        # Re-encoding keeps every value (map order may differ from TF's bytes).
        again = Example()
        again.ParseFromString(encode_example(ours))
        assert again == ref


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(DetforgeError, match=r"not a valid tf\.train\.Example"):
        decode_example(b"\x0a\xff\xff\xff")
