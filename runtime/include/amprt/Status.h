//===- Status.h - error values of the runtime -------------------*- C++ -*-===//
//
// The runtime never throws across its API, never aborts and never exits: a
// failing call returns a Status that carries the message.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_STATUS_H
#define AMPRT_STATUS_H

#include <string>
#include <utility>

namespace amprt {

class [[nodiscard]] Status {
public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }

  bool isOk() const { return !failed_; }
  explicit operator bool() const { return isOk(); }
  const std::string &message() const { return message_; }

private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

} // namespace amprt

/// Returns from the enclosing function when `expr` yields an error Status.
#define AMPRT_RETURN_IF_ERROR(expr)                                            \
  do {                                                                         \
    ::amprt::Status amprtStatus_ = (expr);                                     \
    if (!amprtStatus_.isOk())                                                  \
      return amprtStatus_;                                                     \
  } while (0)

#endif // AMPRT_STATUS_H
