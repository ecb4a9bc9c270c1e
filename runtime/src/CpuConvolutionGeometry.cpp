//===- CpuConvolutionGeometry.cpp - convolution geometry and live taps ----===//

#include "CpuConvolution.h"

namespace amprt::conv {

Geometry oneDnnGeometry(const ConvGeometry &checked) {
  Geometry g{checked.strides, checked.padBegin, checked.padEnd, checked.dilations, checked.group};
  for (int64_t &d : g.dilations)
    d -= 1; // oneDNN counts the gaps: 0 is dense
  return g;
}

LiveTaps liveTaps(const ConvTensors &t, Geometry *g) {
  LiveTaps live;
  size_t spatial = t.src.shape.size() - 2;
  for (size_t d = 0; d < spatial; ++d) {
    int64_t in = t.src.shape[d + 2], out = t.dst.shape[d + 2], taps = t.weights.shape[d + 2];
    int64_t step = g->dilations[d] + 1, stride = g->strides[d], pad = g->padBegin[d];
    // Tap k reads positions k*step - pad + o*stride for o in [0, out).
    auto reads = [&](int64_t k) {
      int64_t lowest = k * step - pad, highest = lowest + (out - 1) * stride;
      return highest >= 0 && lowest < in;
    };
    int64_t first = 0, last = taps - 1;
    while (first < taps && !reads(first))
      ++first;
    while (last > first && !reads(last))
      --last;
    int64_t count = last - first + 1;
    // The same outputs from the cut filter: the padding shrinks by the taps
    // cut before; the end padding follows (both must stay >= 0).
    int64_t padBegin = pad - first * step;
    int64_t padEnd = (out - 1) * stride + (count - 1) * step + 1 - in - padBegin;
    if (first == taps || padBegin < 0 || padEnd < 0)
      first = 0, count = taps;
    live.first.push_back(first);
    live.count.push_back(count);
    if (count != taps) {
      live.all = false;
      g->padBegin[d] = padBegin;
      g->padEnd[d] = padEnd;
    }
  }
  return live;
}

} // namespace amprt::conv
