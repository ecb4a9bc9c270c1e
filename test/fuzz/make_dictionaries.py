"""Writes libFuzzer dictionaries for the protobuf inputs (test/fuzz/dict/):
the tag bytes of every field of ONNX's messages (onnx.proto, from Debian's
python3-onnx) and of the plan and checkpoint messages (runtime/proto/
plan.proto, compiled with protoc here), so that mutations insert valid field
headers rather than wait to stumble on them; and, for ONNX, the op types,
attribute names and enum strings the importer reads (from the seeds).

    /usr/bin/python3 test/fuzz/make_dictionaries.py   # rewrites test/fuzz/dict/
"""
import glob
import importlib
import os
import re
import subprocess
import sys
import tempfile

from google.protobuf import descriptor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

WIRE = {descriptor.FieldDescriptor.TYPE_DOUBLE: 1, descriptor.FieldDescriptor.TYPE_FIXED64: 1,
        descriptor.FieldDescriptor.TYPE_SFIXED64: 1, descriptor.FieldDescriptor.TYPE_FLOAT: 5,
        descriptor.FieldDescriptor.TYPE_FIXED32: 5, descriptor.FieldDescriptor.TYPE_SFIXED32: 5,
        descriptor.FieldDescriptor.TYPE_STRING: 2, descriptor.FieldDescriptor.TYPE_BYTES: 2,
        descriptor.FieldDescriptor.TYPE_MESSAGE: 2}


def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def escape(data):
    return "".join(f"\\x{b:02x}" for b in data)


def field_tags(messages):
    """name -> tag bytes for every field of `messages` and their nested types."""
    entries, seen = {}, set()

    def visit(message):
        if message.full_name in seen:
            return
        seen.add(message.full_name)
        for field in message.fields:
            wire = WIRE.get(field.type, 0)
            base = f"{message.name}.{field.name}"
            entries[base] = varint(field.number << 3 | wire)
            if field.label == descriptor.FieldDescriptor.LABEL_REPEATED and wire != 2:
                entries[base + ".packed"] = varint(field.number << 3 | 2)
            if field.message_type is not None:
                visit(field.message_type)
        for nested in message.nested_types:
            visit(nested)

    for message in messages:
        visit(message)
    return entries


def write(name, entries, words=()):
    path = os.path.join(HERE, "dict", name + ".dict")
    with open(path, "w") as f:
        f.write(f"# libFuzzer dictionary for fuzz-{name}: written by make_dictionaries.py\n")
        for key, data in sorted(entries.items()):
            f.write(f'{re.sub("[^A-Za-z0-9_]", "_", key)}="{escape(data)}"\n')
        for word in sorted(set(words)):
            f.write(f'"{word}"\n')
    print(f"{path}: {len(entries) + len(set(words))} entries")


def onnx_words():
    """Op types, attribute names and string attribute values of the seeds."""
    import onnx
    words = set()
    for path in glob.glob(os.path.join(HERE, "corpus", "onnx", "*")):
        try:
            model = onnx.load(path)
        except Exception:
            continue  # a crash regression, not a model
        for node in model.graph.node:
            words.add(node.op_type)
            for attribute in node.attribute:
                words.add(attribute.name)
                if attribute.s:
                    words.add(attribute.s.decode("ascii", "replace"))
    return [w for w in words if w.isprintable() and '"' not in w and "\\" not in w]


def main():
    import onnx.onnx_ml_pb2 as onnx_pb
    write("onnx", field_tags([onnx_pb.ModelProto.DESCRIPTOR]), onnx_words())
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["protoc", f"--proto_path={ROOT}/runtime/proto", f"--python_out={tmp}",
                        "plan.proto"], check=True)
        sys.path.insert(0, tmp)
        plan_pb = importlib.import_module("plan_pb2")
    write("plan", field_tags([plan_pb.Plan.DESCRIPTOR]))
    write("checkpoint", field_tags([plan_pb.Checkpoint.DESCRIPTOR]))


if __name__ == "__main__":
    main()
