//===- CpuCapabilities.cpp - what the CPU backend runs natively here ------===//

#include "CpuConversions.h"
#include "CpuKernels.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace amprt {
namespace {

/// The processor brand string (CPUID leaves 0x80000002-4), trimmed.
std::string cpuModel() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned int words[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    for (unsigned int leaf = 0; leaf < 3; ++leaf)
      __get_cpuid(0x80000002 + leaf, &words[4 * leaf], &words[4 * leaf + 1],
                  &words[4 * leaf + 2], &words[4 * leaf + 3]);
    char brand[49] = {};
    std::memcpy(brand, words, 48);
    std::string model = brand;
    size_t first = model.find_first_not_of(' '), last = model.find_last_not_of(' ');
    if (first != std::string::npos)
      return model.substr(first, last - first + 1);
  }
#endif
  return "unknown CPU";
}

const char *isaName(dnnl::cpu_isa isa) {
  switch (isa) {
  case dnnl::cpu_isa::sse41:
    return "sse41";
  case dnnl::cpu_isa::avx:
    return "avx";
  case dnnl::cpu_isa::avx2:
    return "avx2";
  case dnnl::cpu_isa::avx2_vnni:
    return "avx2_vnni";
  case dnnl::cpu_isa::avx512_mic:
  case dnnl::cpu_isa::avx512_mic_4ops:
    return "avx512_mic";
  case dnnl::cpu_isa::avx512_core:
    return "avx512_core";
  case dnnl::cpu_isa::avx512_core_vnni:
    return "avx512_core_vnni";
  case dnnl::cpu_isa::avx512_core_bf16:
    return "avx512_core_bf16";
  case dnnl::cpu_isa::avx512_core_amx:
    return "avx512_core_amx";
  default:
    return "generic";
  }
}

} // namespace

CpuCapabilities cpuCapabilities() {
  CpuCapabilities capabilities;
  capabilities.model = cpuModel();
  capabilities.onednnIsa = isaName(dnnl::get_effective_cpu_isa());
  CpuContext context;
  capabilities.bf16GemmNative = context.nativeGemm(DType::BF16);
  capabilities.f16GemmNative = context.nativeGemm(DType::F16);
  capabilities.bf16DotRate = context.bf16DotRateHere();
  capabilities.bf16NativeFaster =
      capabilities.bf16GemmNative && context.nativeFaster(DType::BF16);
  capabilities.nativeConvolutionMapBelow = kSmallConvolutionMap;
  capabilities.vectorConversions = cpu::vectorConversions();
  return capabilities;
}

} // namespace amprt
