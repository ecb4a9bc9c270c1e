//===- ConvolutionReference.h - 3x3 convolutions for the kernel tests -*- C++ -*-===//
//
// The 3x3 convolution (pad 1, dense, one group) the CPU kernel tests run,
// and its FP64 reference: the forward, or the backward-data.
//
//===----------------------------------------------------------------------===//
#ifndef AMP_TEST_UNIT_CONVOLUTIONREFERENCE_H
#define AMP_TEST_UNIT_CONVOLUTIONREFERENCE_H

#include "plan.pb.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace amprt::test {

/// A conv, conv_backward_data or conv_backward_filter kernel: 3x3, pad 1.
inline proto::Kernel paddedConv3x3(const std::string &op, int64_t stride) {
  proto::Kernel kernel;
  kernel.set_op(op);
  kernel.set_node("test");
  for (auto [name, value] : std::map<std::string, double>{
           {"strides.0", stride}, {"strides.1", stride}, {"pads.0", 1}, {"pads.1", 1},
           {"pads.2", 1}, {"pads.3", 1}, {"dilations.0", 1}, {"dilations.1", 1}, {"group", 1}})
    (*kernel.mutable_attrs())[name] = value;
  return kernel;
}

/// The shapes of one paddedConv3x3: x [batch, channels, height, width],
/// w [filters, channels, 3, 3], y [batch, filters, outH, outW].
struct Conv3x3Shape {
  int64_t batch, channels, filters, height, width, stride;
  int64_t outH() const { return (height + 2 - 3) / stride + 1; }
  int64_t outW() const { return (width + 2 - 3) / stride + 1; }
};

/// In FP64: forward, y from x = operand(i); else dx from dy = operand(i).
/// weight(i): w's element i.
inline std::vector<double> referenceConv3x3(const Conv3x3Shape &s, bool forward,
                                            const std::function<double(int64_t)> &operand,
                                            const std::function<double(int64_t)> &weight) {
  int64_t outH = s.outH(), outW = s.outW();
  std::vector<double> result(forward ? s.batch * s.filters * outH * outW
                                     : s.batch * s.channels * s.height * s.width,
                             0.0);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t o = 0; o < s.filters; ++o)
      for (int64_t c = 0; c < s.channels; ++c)
        for (int64_t oh = 0; oh < outH; ++oh)
          for (int64_t ow = 0; ow < outW; ++ow)
            for (int64_t kh = 0; kh < 3; ++kh)
              for (int64_t kw = 0; kw < 3; ++kw) {
                int64_t h = oh * s.stride - 1 + kh, w = ow * s.stride - 1 + kw;
                if (h < 0 || h >= s.height || w < 0 || w >= s.width)
                  continue;
                int64_t xi = ((n * s.channels + c) * s.height + h) * s.width + w;
                int64_t yi = ((n * s.filters + o) * outH + oh) * outW + ow;
                double wv = weight(((o * s.channels + c) * 3 + kh) * 3 + kw);
                if (forward)
                  result[yi] += operand(xi) * wv;
                else
                  result[xi] += operand(yi) * wv;
              }
  return result;
}

} // namespace amprt::test

#endif // AMP_TEST_UNIT_CONVOLUTIONREFERENCE_H
