//===- CpuDnnl.h - what the oneDNN-backed CPU kernels share ------*- C++ -*-===//
#ifndef AMPRT_CPUDNNL_H
#define AMPRT_CPUDNNL_H

#include "Device.h"

#include <oneapi/dnnl/dnnl.hpp>

namespace amprt::cpu {

/// oneDNN's data type of a float storage type.
inline dnnl::memory::data_type dnnlType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
    return dnnl::memory::data_type::bf16;
  case DType::F16:
    return dnnl::memory::data_type::f16;
  default:
    return dnnl::memory::data_type::f32;
  }
}

} // namespace amprt::cpu

#endif // AMPRT_CPUDNNL_H
