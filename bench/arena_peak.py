"""What fills a plan's training arena at its peak: the arena tensors alive at
the kernel where the most bytes are live, grouped by the kernel that wrote
them and their type.
usage: arena_peak.py PLAN.ampplan   (Debian's /usr/bin/python3; needs protoc)"""
import collections
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "runtime", "proto")
BYTES = {1: 4, 2: 2, 3: 2, 4: 8, 5: 4, 6: 1}  # plan.proto's DType


def load(path):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["protoc", f"-I{PROTO}", f"--python_out={out}",
                        os.path.join(PROTO, "plan.proto")], check=True)
        sys.path.insert(0, out)
        import plan_pb2
        plan = plan_pb2.Plan()
        with open(path, "rb") as f:
            plan.ParseFromString(f.read())
        return plan, plan_pb2


def main():
    plan, plan_pb2 = load(sys.argv[1])
    program = plan.train
    first, last, writer = {}, {}, {}
    for index, kernel in enumerate(program.kernels):
        for buffer in list(kernel.inputs) + list(kernel.outputs):
            first.setdefault(buffer, index)
            last[buffer] = index
        for buffer in kernel.outputs:
            writer.setdefault(buffer, kernel.op)

    def size(buffer):
        n = BYTES[buffer.type.dtype]
        for extent in buffer.type.shape:
            n *= extent
        return n

    arena = [b for b, buffer in enumerate(program.buffers)
             if buffer.kind == plan_pb2.Buffer.ARENA and b in first]
    live = [0] * len(program.kernels)
    for b in arena:
        for index in range(first[b], last[b] + 1):
            live[index] += size(program.buffers[b])
    peak = max(range(len(live)), key=live.__getitem__)
    kernel = program.kernels[peak]
    print(f"arena {program.arena_bytes / 1e6:.2f} MB; {live[peak] / 1e6:.2f} MB live at "
          f"kernel {peak} ({kernel.op} at '{kernel.node}')")
    groups = collections.Counter()
    for b in arena:
        if first[b] <= peak <= last[b]:
            dtype = plan_pb2.DType.Name(program.buffers[b].type.dtype)
            groups[(writer.get(b, "input"), dtype)] += size(program.buffers[b])
    for (op, dtype), total in groups.most_common():
        print(f"{total / 1e6:8.2f} MB  {op} ({dtype})")


if __name__ == "__main__":
    main()
