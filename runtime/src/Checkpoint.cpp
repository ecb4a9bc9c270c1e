//===- Checkpoint.cpp - atomic, checked checkpoints of a session ----------===//
//
// File layout: "AMPCKPT1" | payload length (8 bytes, LE) | CRC-32 of the
// payload (4 bytes, LE, zlib's) | payload (a serialized proto::Checkpoint).
// Writes go to a temporary file that is fsynced and renamed over the target,
// then the directory is fsynced, so a reader sees the old file or the new
// one, never a torn one.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <unistd.h>
#include <zlib.h>

namespace amprt {

namespace {

constexpr char kMagic[8] = {'A', 'M', 'P', 'C', 'K', 'P', 'T', '1'};
constexpr size_t kHeaderBytes = 8 + 8 + 4;

void putLittleEndian(std::string &out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((value >> (8 * i)) & 0xff);
}

uint64_t getLittleEndian(const std::string &in, size_t offset, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<uint64_t>(static_cast<uint8_t>(in[offset + i])) << (8 * i);
  return value;
}

uint32_t crc32Of(const std::string &bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto *data = reinterpret_cast<const Bytef *>(bytes.data());
  size_t left = bytes.size();
  while (left > 0) { // zlib takes 32-bit lengths
    uInt chunk = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, data, chunk);
    data += chunk;
    left -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

Status writeAll(int fd, const std::string &bytes) {
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) // a full disk: ENOSPC, or EFBIG past a file-size limit
      return Status::error(std::string("write failed: ") +
                           (n < 0 ? std::strerror(errno) : "no progress"));
    written += static_cast<size_t>(n);
  }
  return Status::ok();
}

std::string directoryOf(const std::string &path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

Status encodeCheckpoint(const proto::Checkpoint &checkpoint, std::string *file,
                        size_t maxPayloadBytes) {
  // Beyond 2 GiB protobuf fails to serialize, and the checkpoint that
  // replaced the previous one would not load.
  size_t bytes = checkpoint.ByteSizeLong();
  std::string payload;
  if (bytes > maxPayloadBytes || !checkpoint.SerializeToString(&payload))
    return Status::error("the checkpoint would be " + std::to_string(bytes) +
                         " bytes, above the format's limit of " +
                         std::to_string(maxPayloadBytes) + " (one protobuf message)");
  *file = std::string(kMagic, sizeof(kMagic));
  putLittleEndian(*file, payload.size(), 8);
  putLittleEndian(*file, crc32Of(payload), 4);
  *file += payload;
  return Status::ok();
}

Status decodeCheckpoint(const std::string &file, const std::string &path,
                        proto::Checkpoint *checkpoint) {
  if (file.size() < kHeaderBytes || std::memcmp(file.data(), kMagic, sizeof(kMagic)) != 0)
    return Status::error(path + ": not a checkpoint (bad magic)");
  uint64_t length = getLittleEndian(file, 8, 8);
  if (length != file.size() - kHeaderBytes)
    return Status::error(path + ": truncated or padded checkpoint (header says " +
                         std::to_string(length) + " payload bytes, file has " +
                         std::to_string(file.size() - kHeaderBytes) + ")");
  std::string payload = file.substr(kHeaderBytes);
  if (crc32Of(payload) != static_cast<uint32_t>(getLittleEndian(file, 16, 4)))
    return Status::error(path + ": corrupted checkpoint (CRC-32 mismatch)");
  if (!checkpoint->ParseFromString(payload))
    return Status::error(path + ": corrupted checkpoint (payload does not parse)");
  if (checkpoint->format_version() != kCheckpointFormatVersion)
    return Status::error(path + ": checkpoint format version " +
                         std::to_string(checkpoint->format_version()) + " is not supported");
  return Status::ok();
}

Status writeFileAtomically(const std::string &path, const std::string &contents) {
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return Status::error(path + ": cannot create " + temp + ": " + std::strerror(errno));
  auto failed = [](const char *what) {
    return Status::error(what + std::string(std::strerror(errno)));
  };
  Status status = writeAll(fd, contents);
  if (status.isOk() && ::fsync(fd) != 0)
    status = failed("fsync failed: ");
  if (::close(fd) != 0 && status.isOk())
    status = failed("close failed: ");
  if (status.isOk() && std::rename(temp.c_str(), path.c_str()) != 0)
    status = failed("rename failed: ");
  if (!status.isOk()) {
    ::unlink(temp.c_str());
    return Status::error(path + ": " + status.message());
  }
  // Make the rename itself durable.
  int dir = ::open(directoryOf(path).c_str(), O_RDONLY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return Status::ok();
}

Status readFile(const std::string &path, std::string *contents, size_t maxBytes) {
  std::string tooLarge = path + ": larger than the limit of " + std::to_string(maxBytes) +
                         " bytes";
  std::error_code error;
  if (std::filesystem::is_regular_file(path, error)) {
    uintmax_t size = std::filesystem::file_size(path, error);
    if (!error && size > maxBytes)
      return Status::error(tooLarge + " (" + std::to_string(size) + " bytes)");
  }
  std::unique_ptr<FILE, int (*)(FILE *)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file)
    return Status::error(path + ": cannot open");
  contents->clear();
  char chunk[1 << 16];
  while (size_t n = std::fread(chunk, 1, sizeof(chunk), file.get())) {
    if (contents->size() + n > maxBytes)
      return Status::error(tooLarge);
    contents->append(chunk, n);
  }
  if (std::ferror(file.get()))
    return Status::error(path + ": read failed");
  return Status::ok();
}

} // namespace amprt
