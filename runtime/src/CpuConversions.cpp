//===- CpuConversions.cpp - f32 <-> bf16/f16 over arrays ------------------===//
//
// bfloat16 conversions are integer lane operations: plain loops that the
// compiler vectorises, compiled per vector width (AMPRT_VECTOR_CLONES). f16
// is hand-written with F16C intrinsics because neither oneDNN 2.6 (its
// reorders have no f16 on AVX2 CPUs) nor the compiler (no auto-vectorised f16
// conversion without building the whole runtime for F16C) gives a vector
// path that still runs on CPUs without it; those functions are compiled for
// that target alone and chosen at run time. Lanes holding a NaN fall back to
// the scalar code: the hardware keeps NaN payloads, the scalar functions
// make them canonical, and both paths must give the same bits.
//
//===----------------------------------------------------------------------===//

#include "CpuConversions.h"
#include "CpuKernelSupport.h"

#include "amprt/FloatConversions.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AMPRT_X86 1
#endif

namespace amprt::cpu {
namespace {

/// bfloat16 needs only integer lane operations, which the compiler
/// vectorises by itself: these loops are compiled per vector width (16 lanes
/// with AVX-512 instead of the 8 of the intrinsics below).
AMPRT_VECTOR_CLONES
void widenBf16(const uint16_t *src, float *dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    dst[i] = math::bf16ToFloat(src[i]);
}
AMPRT_VECTOR_CLONES
void narrowBf16(const float *src, uint16_t *dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    dst[i] = math::floatToBf16(src[i]);
}
AMPRT_VECTOR_CLONES
void roundBf16(float *values, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    values[i] = math::bf16ToFloat(math::floatToBf16(values[i]));
}

void widenScalar(DType type, const void *src, float *dst, int64_t count) {
  auto *h = static_cast<const uint16_t *>(src);
  if (type == DType::BF16)
    for (int64_t i = 0; i < count; ++i)
      dst[i] = math::bf16ToFloat(h[i]);
  else
    for (int64_t i = 0; i < count; ++i)
      dst[i] = math::f16ToFloat(h[i]);
}

void narrowScalar(DType type, const float *src, void *dst, int64_t count) {
  auto *h = static_cast<uint16_t *>(dst);
  if (type == DType::BF16)
    for (int64_t i = 0; i < count; ++i)
      h[i] = math::floatToBf16(src[i]);
  else
    for (int64_t i = 0; i < count; ++i)
      h[i] = math::floatToF16(src[i]);
}

void roundScalar(DType type, float *values, int64_t count) {
  if (type == DType::BF16)
    for (int64_t i = 0; i < count; ++i)
      values[i] = math::bf16ToFloat(math::floatToBf16(values[i]));
  else
    for (int64_t i = 0; i < count; ++i)
      values[i] = math::f16ToFloat(math::floatToF16(values[i]));
}

#ifdef AMPRT_X86
#define AMPRT_AVX2 __attribute__((target("avx2,f16c")))

AMPRT_AVX2 inline bool anyNanHalf(__m128i h) {
  __m128i magnitude = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  return _mm_movemask_epi8(_mm_cmpgt_epi16(magnitude, _mm_set1_epi16(0x7c00))) != 0;
}

AMPRT_AVX2 inline bool anyNan(__m256 x) {
  return _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0;
}

/// The F16C paths (f16 only: bfloat16 has the plain loops above).
AMPRT_AVX2 void widenF16Vector(const uint16_t *h, float *dst, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i));
    if (anyNanHalf(halves))
      widenScalar(DType::F16, h + i, dst + i, 8);
    else
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(halves));
  }
  widenScalar(DType::F16, h + i, dst + i, count - i);
}

AMPRT_AVX2 void narrowF16Vector(const float *src, uint16_t *h, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 x = _mm256_loadu_ps(src + i);
    if (anyNan(x))
      narrowScalar(DType::F16, src + i, h + i, 8);
    else
      _mm_storeu_si128(reinterpret_cast<__m128i *>(h + i),
                       _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  narrowScalar(DType::F16, src + i, h + i, count - i);
}

AMPRT_AVX2 void roundF16Vector(float *values, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 x = _mm256_loadu_ps(values + i);
    if (anyNan(x))
      roundScalar(DType::F16, values + i, 8);
    else
      _mm256_storeu_ps(values + i, _mm256_cvtph_ps(_mm256_cvtps_ph(
                                       x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  }
  roundScalar(DType::F16, values + i, count - i);
}
#endif

} // namespace

bool vectorConversions() {
#ifdef AMPRT_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

namespace {

void widenSerial(DType type, const void *src, float *dst, int64_t count) {
  if (type == DType::F32) {
    std::copy_n(static_cast<const float *>(src), count, dst);
    return;
  }
  if (type == DType::BF16)
    return widenBf16(static_cast<const uint16_t *>(src), dst, count);
#ifdef AMPRT_X86
  if (vectorConversions())
    return widenF16Vector(static_cast<const uint16_t *>(src), dst, count);
#endif
  widenScalar(type, src, dst, count);
}

void narrowSerial(DType type, const float *src, void *dst, int64_t count) {
  if (type == DType::F32) {
    std::copy_n(src, count, static_cast<float *>(dst));
    return;
  }
  if (type == DType::BF16)
    return narrowBf16(src, static_cast<uint16_t *>(dst), count);
#ifdef AMPRT_X86
  if (vectorConversions())
    return narrowF16Vector(src, static_cast<uint16_t *>(dst), count);
#endif
  narrowScalar(type, src, dst, count);
}

void roundSerial(DType type, float *values, int64_t count) {
  if (type == DType::F32)
    return;
  if (type == DType::BF16)
    return roundBf16(values, count);
#ifdef AMPRT_X86
  if (vectorConversions())
    return roundF16Vector(values, count);
#endif
  roundScalar(type, values, count);
}

} // namespace

void widen(DType type, const void *src, float *dst, int64_t count) {
  const char *bytes = static_cast<const char *>(src);
  size_t size = dtypeSize(type);
  parallelChunks(count, [&](int64_t begin, int64_t n) {
    widenSerial(type, bytes + begin * size, dst + begin, n);
  });
}

void narrow(DType type, const float *src, void *dst, int64_t count) {
  char *bytes = static_cast<char *>(dst);
  size_t size = dtypeSize(type);
  parallelChunks(count, [&](int64_t begin, int64_t n) {
    narrowSerial(type, src + begin, bytes + begin * size, n);
  });
}

void roundThrough(DType type, float *values, int64_t count) {
  if (type == DType::F32)
    return;
  parallelChunks(count, [&](int64_t begin, int64_t n) { roundSerial(type, values + begin, n); });
}

} // namespace amprt::cpu
