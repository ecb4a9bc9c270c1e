//===- CpuConversions.h - f32 <-> bf16/f16 over arrays, vectorised -*- C++ -*-===//
//
// The array forms of FloatConversions.h for the CPU kernels: bf16 in loops
// compiled per vector width, f16 with F16C where the CPU has it (the scalar
// functions elsewhere). Every
// result is bit-identical to the scalar conversion, NaN payloads included,
// so a kernel gives the same bits on every x86-64 CPU.
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_CPUCONVERSIONS_H
#define AMPRT_CPUCONVERSIONS_H

#include "amprt/Session.h"

#include <cstdint>

namespace amprt::cpu {

/// dst[i] = float(src[i]) for src of `type` (f32, bf16 or f16).
void widen(DType type, const void *src, float *dst, int64_t count);
/// dst[i] = src[i] rounded to nearest even in `type` (f32: a copy).
void narrow(DType type, const float *src, void *dst, int64_t count);
/// values[i] = float(round(values[i] to `type`)): what storing and loading
/// again would give.
void roundThrough(DType type, float *values, int64_t count);

/// True when the f16 vector paths run here (AVX2 and F16C); else scalar.
bool vectorConversions();

} // namespace amprt::cpu

#endif // AMPRT_CPUCONVERSIONS_H
