"""tf.train.Example messages built from a descriptor with protobuf alone, to craft test TFRecords."""

import gzip
import struct

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from structae.data.tfrecord import masked_crc


def _message_classes():
    proto = descriptor_pb2.FileDescriptorProto(name="example_for_tests.proto", package="tftest", syntax="proto3")

    def message(name, *fields):
        msg = proto.message_type.add(name=name)
        for number, (field_name, kind, label, type_name) in enumerate(fields, start=1):
            f = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                f.type_name = type_name
        return msg

    F = descriptor_pb2.FieldDescriptorProto
    message("BytesList", ("value", F.TYPE_BYTES, F.LABEL_REPEATED, None))
    message("FloatList", ("value", F.TYPE_FLOAT, F.LABEL_REPEATED, None))
    message("Int64List", ("value", F.TYPE_INT64, F.LABEL_REPEATED, None))
    feature = message("Feature", ("bytes_list", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".tftest.BytesList"),
                      ("float_list", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".tftest.FloatList"),
                      ("int64_list", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".tftest.Int64List"))
    feature.oneof_decl.add(name="kind")
    for f in feature.field:
        f.oneof_index = 0
    features = message("Features", ("feature", F.TYPE_MESSAGE, F.LABEL_REPEATED, ".tftest.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".tftest.Feature")
    entry.options.map_entry = True
    message("Example", ("features", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".tftest.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tftest.{name}"))
            for name in ("Example",)}


Example = _message_classes()["Example"]


def example(bytes_features: dict, float_features: dict = (), string_features: dict = ()) -> bytes:
    """bytes_features: name -> uint8 array, stored as one single-byte string per element (DeepMind's layout)."""
    ex = Example()
    for name, array in bytes_features.items():
        ex.features.feature[name].bytes_list.value.extend(bytes([b]) for b in array.ravel().tolist())
    for name, array in dict(float_features).items():
        ex.features.feature[name].float_list.value.extend(array.ravel().tolist())
    for name, strings in dict(string_features).items():
        ex.features.feature[name].bytes_list.value.extend(strings)
    return ex.SerializeToString()


def frame(record: bytes) -> bytes:
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc(length)) + record + struct.pack("<I", masked_crc(record))


def write_tfrecord(path, records, compress=True) -> None:
    data = b"".join(frame(r) for r in records)
    path.write_bytes(gzip.compress(data) if compress else data)
