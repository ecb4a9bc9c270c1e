//===- AtomicFile.h - crash-safe file writes --------------------*- C++ -*-===//
#ifndef AMPRT_ATOMICFILE_H
#define AMPRT_ATOMICFILE_H

#include "amprt/Status.h"

#include <string>

namespace amprt {

/// Writes `contents` to `path` so that readers see the old file or the new
/// one, never a torn one: a temporary file beside it, fsync, rename, then an
/// fsync of the directory.
Status writeFileAtomically(const std::string &path, const std::string &contents);

/// Reads a whole file.
Status readFile(const std::string &path, std::string *contents);

} // namespace amprt

#endif // AMPRT_ATOMICFILE_H
