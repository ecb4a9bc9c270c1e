//===- Checkpoint.h - checkpoint files and atomic writes --------*- C++ -*-===//
#ifndef AMPRT_CHECKPOINT_H
#define AMPRT_CHECKPOINT_H

#include "amprt/AtomicFile.h"
#include "plan.pb.h"

namespace amprt {

constexpr uint32_t kCheckpointFormatVersion = 1;

/// Magic, length and CRC-32 header followed by the serialized checkpoint,
/// into `file`; a payload above `maxPayloadBytes` (protobuf's 2 GiB: about
/// 170M parameters with AdamW's two moments) is an error, not a file.
Status encodeCheckpoint(const proto::Checkpoint &checkpoint, std::string *file,
                        size_t maxPayloadBytes = kMaxProtobufBytes);
/// Checks header, length and CRC-32, then parses; `path` names errors.
Status decodeCheckpoint(const std::string &file, const std::string &path,
                        proto::Checkpoint *checkpoint);

} // namespace amprt

#endif // AMPRT_CHECKPOINT_H
