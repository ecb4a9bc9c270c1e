//===- FeedChecks.h - what fed tensors must hold, checked before a run -*- C++ -*-===//
//
// A step that ran on a NaN image or an out-of-range label would poison the
// parameters, or fail halfway after batch norm had already moved its running
// averages. The session checks every feed on the host before copying any of
// them, so a bad feed is an error naming the input and leaves the session as
// it was.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_FEEDCHECKS_H
#define AMPRT_FEEDCHECKS_H

#include "KernelChecks.h"

namespace amprt {

/// What one program input must hold beyond its byte size.
struct FeedCheck {
  enum class Kind { None, Finite, Labels } kind = Kind::None;
  int64_t classes = 0; // Labels: the logits' class count
  LabelRule rule;      // Labels: which values count
};

/// One check per input of `program`, in its order: float inputs must be
/// finite; int64 inputs read as labels by a softmax_cross_entropy must lie in
/// [0, classes) or be its ignore_index.
std::vector<FeedCheck> feedChecks(const proto::Program &program);

/// The first element of `bytes` of `dtype` that is inf or NaN, or -1 (also
/// for int64).
int64_t indexOfNonFinite(const void *data, size_t bytes, DType dtype);

/// Checks `bytes` of a feed of `dtype`; the error says where and why.
Status checkFeed(const FeedCheck &check, DType dtype, const void *data, size_t bytes);

} // namespace amprt

#endif // AMPRT_FEEDCHECKS_H
