//===- CpuConvolution.h - convolution geometry shared by the CPU kernels -*- C++ -*-===//
//
// What the oneDNN convolutions (CpuConvolution.cpp) and the GEMM-based
// convolutions of small maps (CpuConvolutionGemm.cpp) share: the
// kernel's geometry, its tensors in convolution roles and the live taps.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_CPUCONVOLUTION_H
#define AMPRT_CPUCONVOLUTION_H

#include "CnnChecks.h"
#include "CpuKernelSupport.h"

#include <cstdint>
#include <vector>

namespace amprt::conv {

using dims = std::vector<int64_t>;

/// The kernel's geometry (CnnChecks.h) with dilations in oneDNN's
/// convention (0 = dense).
struct Geometry {
  dims strides, padBegin, padEnd, dilations;
  int64_t group = 1;
};

/// The checked geometry in oneDNN's convention.
Geometry oneDnnGeometry(const ConvGeometry &checked);

/// The filter taps that read any input: per spatial dim, the first tap and
/// how many. A tap that only ever reads padding adds nothing to the result
/// or to the input's gradient, and its own gradient is zero, so the
/// primitives run on the live taps alone (a strided view of the filter).
/// ResNet-18 at 32x32 inputs has 3x3 convolutions on 1x1 maps, where only
/// the centre tap is live: without this, 8/9 of their work is on padding.
struct LiveTaps {
  dims first, count;
  bool all = true; // every tap is live: nothing to cut
};

/// The live taps of a convolution; cuts the padding in `g` to match.
LiveTaps liveTaps(const ConvTensors &t, Geometry *g);

/// Whether a convolution on a small map runs as one GEMM over gathered
/// input windows (CpuConvolutionGemm.cpp) rather than a oneDNN convolution:
/// the filter gradient always, the forward where its GEMM runs in f32 (asks
/// `context` whether a low type runs natively), the backward-data never.
bool smallMapByGemm(KernelId id, const ConvTensors &t, const Geometry &g, CpuContext &context);

/// That GEMM kernel; t and g as cut by liveTaps.
Status buildSmallMapByGemm(KernelId id, const ConvTensors &t, const Geometry &g,
                           const LiveTaps &live, CpuContext &context,
                           std::unique_ptr<CpuKernel> *result);

} // namespace amprt::conv

#endif // AMPRT_CPUCONVOLUTION_H
