//===- PoolGeometry.h - the taps of pooling windows inside the input -*- C++ -*-===//
//
// Which input positions each pooling window covers, written once for the
// CPU kernels and the CUDA device code (plain data, AMPRT_HD functions).
// Only the taps inside the input are visited, so the work per window is
// bounded by the input whatever the kernel's size: a plan may declare a
// window of 2^40 taps over a 4-wide input, padded to fit. The checks
// (CnnChecks.cpp: checkMaxPool, checkAvgPool) keep every position formed
// here, padding included, within int64.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_POOLGEOMETRY_H
#define AMPRT_POOLGEOMETRY_H

#include "amprt/FloatConversions.h" // AMPRT_HD

#include <cstdint>

namespace amprt {

/// The most spatial dims a pooling may have (fixed-size arrays here).
constexpr int kMaxPoolDims = 8;

/// Taps [begin, end) of a window along one dim; empty when begin == end.
struct TapRange {
  int64_t begin, end;
};

/// The taps (`taps` of them, `dilation` apart, tap 0 at `start`) that lie
/// inside [0, size). Formed by division, never as start + tap * dilation,
/// which could leave int64 for taps far outside.
AMPRT_HD inline TapRange tapsInside(int64_t start, int64_t dilation, int64_t taps, int64_t size) {
  int64_t begin = start >= 0 ? 0 : -start / dilation + (-start % dilation != 0);
  int64_t last = size - 1 - start; // the offset from tap 0 of the last position
  int64_t end = last < 0 ? 0 : last / dilation + 1;
  begin = begin < taps ? begin : taps;
  end = end < taps ? end : taps;
  return {begin, end > begin ? end : begin};
}

/// A pooling's geometry over one [spatial...] plane: input and result
/// sizes, and the window.
struct PoolGeometry {
  int rank = 0;
  int64_t in[kMaxPoolDims], out[kMaxPoolDims], kernel[kMaxPoolDims], strides[kMaxPoolDims];
  int64_t padBegin[kMaxPoolDims], padEnd[kMaxPoolDims], dilations[kMaxPoolDims];
};

/// Where the window of result position `o` along dim d starts: the
/// position of its tap 0.
AMPRT_HD inline int64_t windowStart(const PoolGeometry &g, int d, int64_t o) {
  return o * g.strides[d] - g.padBegin[d];
}

/// The taps of result position `o`'s window along dim d inside the input.
AMPRT_HD inline TapRange tapsOfResult(const PoolGeometry &g, int d, int64_t o) {
  return tapsInside(windowStart(g, d, o), g.dilations[d], g.kernel[d], g.in[d]);
}

/// Where result `flat`'s window starts along each dim.
AMPRT_HD inline void windowStarts(const PoolGeometry &g, int64_t flat, int64_t *start) {
  for (int d = g.rank; d-- > 0;) {
    start[d] = windowStart(g, d, flat % g.out[d]);
    flat /= g.out[d];
  }
}

/// Calls fn(offset) with the flat offset in the plane of each tap of result
/// `flat`'s window that lies inside the input, in the window's row-major
/// order (the order in which max pooling breaks ties).
template <typename Fn> AMPRT_HD void forEachTapInside(const PoolGeometry &g, int64_t flat, Fn fn) {
  int64_t start[kMaxPoolDims], k[kMaxPoolDims];
  TapRange taps[kMaxPoolDims];
  windowStarts(g, flat, start);
  for (int d = 0; d < g.rank; ++d) {
    taps[d] = tapsInside(start[d], g.dilations[d], g.kernel[d], g.in[d]);
    if (taps[d].begin == taps[d].end)
      return;
    k[d] = taps[d].begin;
  }
  for (;;) {
    int64_t offset = 0;
    for (int d = 0; d < g.rank; ++d)
      offset = offset * g.in[d] + start[d] + k[d] * g.dilations[d];
    fn(offset);
    int d = g.rank - 1; // the next tap, the last dim fastest
    while (d >= 0 && ++k[d] == taps[d].end)
      k[d] = taps[d].begin, --d;
    if (d < 0)
      return;
  }
}

/// What average pooling divides result `flat`'s sum by: the number of its
/// taps inside the input or, with `includePad` (count_include_pad), inside
/// the padded input [-padBegin, in + padEnd). In double: a huge padded
/// window's count can pass int64.
AMPRT_HD inline double windowDivisor(const PoolGeometry &g, int64_t flat, bool includePad) {
  int64_t start[kMaxPoolDims];
  windowStarts(g, flat, start);
  double count = 1;
  for (int d = 0; d < g.rank; ++d) {
    int64_t pad = includePad ? g.padBegin[d] : 0;
    int64_t size = includePad ? g.in[d] + g.padBegin[d] + g.padEnd[d] : g.in[d];
    TapRange taps = tapsInside(start[d] + pad, g.dilations[d], g.kernel[d], size);
    count *= static_cast<double>(taps.end - taps.begin);
  }
  return count;
}

} // namespace amprt

#endif // AMPRT_POOLGEOMETRY_H
