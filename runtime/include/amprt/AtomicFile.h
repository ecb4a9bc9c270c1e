//===- AtomicFile.h - crash-safe file writes --------------------*- C++ -*-===//
#ifndef AMPRT_ATOMICFILE_H
#define AMPRT_ATOMICFILE_H

#include "amprt/Status.h"

#include <cstddef>
#include <string>

namespace amprt {

/// Writes `contents` to `path` so that readers see the old file or the new
/// one, never a torn one: a temporary file beside it, fsync, rename, then an
/// fsync of the directory.
Status writeFileAtomically(const std::string &path, const std::string &contents);

/// Protobuf messages (plans, checkpoints, ONNX models) stop at 2 GiB.
constexpr size_t kMaxProtobufBytes = (size_t{1} << 31) - 1;
/// Data files read whole (.npy feeds, IDX datasets after gunzip): a few KB
/// of gzip, a pipe or a device can give any amount.
constexpr size_t kMaxDataFileBytes = size_t{16} << 30;

/// Reads a whole file, or a pipe or device, of at most `maxBytes`: a regular
/// file above it is refused before reading, anything else (/dev/zero) as
/// soon as it has given more.
Status readFile(const std::string &path, std::string *contents,
                size_t maxBytes = kMaxProtobufBytes);

} // namespace amprt

#endif // AMPRT_ATOMICFILE_H
