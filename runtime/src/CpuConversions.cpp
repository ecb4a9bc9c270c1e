//===- CpuConversions.cpp - f32 <-> bf16/f16 over arrays ------------------===//
//
// Hand-written with intrinsics because neither oneDNN 2.6 (its reorders have
// no f16 on AVX2 CPUs) nor the compiler (no auto-vectorised f16 conversion
// without building the whole runtime for F16C) gives a vector path that still
// runs on CPUs without it. The AVX2/F16C functions are compiled for that
// target alone and chosen at run time. Lanes holding a NaN fall back to the
// scalar code: the hardware keeps NaN payloads, the scalar functions make
// them canonical, and both paths must give the same bits.
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

AMPRT_AVX2 inline __m256 bf16x8ToFloat(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/// Eight floats rounded to bf16 (ties to even, NaN made quiet) as they would
/// be by math::floatToBf16, in the low 16 bits of each 32-bit lane.
AMPRT_AVX2 inline __m256i floatToBf16x8Wide(__m256 x) {
  __m256i bits = _mm256_castps_si256(x);
  __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  __m256i isNan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f800000));
  __m256i lowestKept = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lowestKept), 16);
  __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet, isNan);
}

AMPRT_AVX2 inline __m128i packLow16(__m256i wide) {
  // packus works within 128-bit lanes; gather the two useful quarters.
  __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(wide, wide), 0xD8);
  return _mm256_castsi256_si128(packed);
}

AMPRT_AVX2 inline bool anyNanHalf(__m128i h) {
  __m128i magnitude = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  return _mm_movemask_epi8(_mm_cmpgt_epi16(magnitude, _mm_set1_epi16(0x7c00))) != 0;
}

AMPRT_AVX2 inline bool anyNan(__m256 x) {
  return _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0;
}

AMPRT_AVX2 void widenVector(DType type, const void *src, float *dst, int64_t count) {
  auto *h = static_cast<const uint16_t *>(src);
  int64_t i = 0;
  if (type == DType::BF16) {
    for (; i + 8 <= count; i += 8)
      _mm256_storeu_ps(dst + i, bf16x8ToFloat(_mm_loadu_si128(
                                    reinterpret_cast<const __m128i *>(h + i))));
  } else {
    for (; i + 8 <= count; i += 8) {
      __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i *>(h + i));
      if (anyNanHalf(halves))
        widenScalar(type, h + i, dst + i, 8);
      else
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(halves));
    }
  }
  widenScalar(type, h + i, dst + i, count - i);
}

AMPRT_AVX2 void narrowVector(DType type, const float *src, void *dst, int64_t count) {
  auto *h = static_cast<uint16_t *>(dst);
  int64_t i = 0;
  if (type == DType::BF16) {
    for (; i + 8 <= count; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i *>(h + i),
                       packLow16(floatToBf16x8Wide(_mm256_loadu_ps(src + i))));
  } else {
    for (; i + 8 <= count; i += 8) {
      __m256 x = _mm256_loadu_ps(src + i);
      if (anyNan(x))
        narrowScalar(type, src + i, h + i, 8);
      else
        _mm_storeu_si128(reinterpret_cast<__m128i *>(h + i),
                         _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
  }
  narrowScalar(type, src + i, h + i, count - i);
}

AMPRT_AVX2 void roundVector(DType type, float *values, int64_t count) {
  int64_t i = 0;
  if (type == DType::BF16) {
    for (; i + 8 <= count; i += 8) {
      __m256i wide = floatToBf16x8Wide(_mm256_loadu_ps(values + i));
      _mm256_storeu_ps(values + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
  } else {
    for (; i + 8 <= count; i += 8) {
      __m256 x = _mm256_loadu_ps(values + i);
      if (anyNan(x))
        roundScalar(type, values + i, 8);
      else
        _mm256_storeu_ps(values + i, _mm256_cvtph_ps(_mm256_cvtps_ph(
                                         x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    }
  }
  roundScalar(type, values + i, count - i);
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
#ifdef AMPRT_X86
  if (vectorConversions())
    return widenVector(type, src, dst, count);
#endif
  widenScalar(type, src, dst, count);
}

void narrowSerial(DType type, const float *src, void *dst, int64_t count) {
  if (type == DType::F32) {
    std::copy_n(src, count, static_cast<float *>(dst));
    return;
  }
#ifdef AMPRT_X86
  if (vectorConversions())
    return narrowVector(type, src, dst, count);
#endif
  narrowScalar(type, src, dst, count);
}

void roundSerial(DType type, float *values, int64_t count) {
  if (type == DType::F32)
    return;
#ifdef AMPRT_X86
  if (vectorConversions())
    return roundVector(type, values, count);
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
