//===- Session.h - train a compiled plan ------------------------*- C++ -*-===//
//
// The embeddable entry point of the runtime. A Session owns a plan's
// persistent state (parameters, optimizer state, step counter) and one arena
// per program; it depends on no MLIR and holds no globals.
//
//   std::unique_ptr<amprt::Session> session;
//   if (auto s = amprt::Session::create("mlp.ampplan", {}, &session); !s)
//     return fail(s.message());
//   session->step({{"input", images, imageBytes}, {"labels", labels, labelBytes}});
//   float loss = session->loss();
//
//===----------------------------------------------------------------------===//
#ifndef AMPRT_SESSION_H
#define AMPRT_SESSION_H

#include "amprt/Status.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace amprt {

class Communicator;

enum class DType { F32 = 1, BF16 = 2, F16 = 3, I64 = 4, I32 = 5, Bool = 6 };
size_t dtypeSize(DType dtype);
const char *dtypeName(DType dtype);
inline bool isFloat(DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16;
}

/// Describes a tensor the user can feed or read.
struct TensorInfo {
  std::string name;
  std::string role; // "input", "label", "param", "state", "loss", "output", "grad"
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t numElements() const;
  size_t bytes() const { return numElements() * dtypeSize(dtype); }
};

/// A tensor handed to the session by name; `bytes` must match exactly.
struct Feed {
  std::string name;
  const void *data = nullptr;
  size_t bytes = 0;
};

/// How the CPU runs a low-precision GEMM or convolution that oneDNN has a
/// native kernel for (without one it is always widened).
enum class CpuGemms {
  Native,  // always the native kernel (the default)
  Fastest, // native where it is faster here, else operands widened to f32
  Widened, // always an f32 kernel on widened operands, the result rounded once
};

struct SessionOptions {
  /// Where the plan runs: "cpu" (default), "cuda" or "cuda:N" (the CUDA
  /// backend, when the runtime was built with it and a GPU is present).
  std::string device = "cpu";
  /// CUDA: let FP32 GEMMs use TF32 Tensor Cores. Off, so FP32 is true FP32.
  bool allowTf32 = false;
  /// Threads for the CPU kernels; 0 keeps OpenMP's default.
  int numThreads = 0;
  /// CPU: native or widened low-precision GEMMs and convolutions. Fastest
  /// measures this CPU's bf16 dot-product rate against its f32 FMA rate
  /// (see CpuCapabilities::bf16DotRate). The choice changes low bits of the
  /// results, never their f32-accumulation semantics. Not yet the default:
  /// see docs/runtime-api.md.
  CpuGemms cpuGemms = CpuGemms::Native;
  /// Time every kernel (see Session::kernelProfile); off by default.
  bool profile = false;
  /// After every kernel, look for inf/NaN in its float outputs and remember
  /// the first kernel of each run that produced one (Session::firstNonFinite).
  bool checkNumerics = false;
  /// step() and evaluate() refuse a float input holding an inf or NaN (and,
  /// always, a label outside the loss's classes) before running anything,
  /// naming the input: the session stays as it was. True lets non-finite
  /// inputs through, e.g. to test what loss scaling does with them.
  bool allowNonFiniteInputs = false;
  /// Device memory the plan may take (states, arenas and constants); a plan
  /// that needs more is refused before anything is allocated, naming both.
  /// 0: no limit beyond the device's (an allocation that fails is an error).
  int64_t memoryLimitBytes = 0;
  /// The collectives of a data-parallel plan (Communicator.h; not owned, it
  /// must outlive the session). Null: one rank. A plan compiled for N ranks
  /// is refused unless this spans exactly N.
  Communicator *communicator = nullptr;
};

/// Accumulated time of one kernel of a program, when profiling.
struct KernelTime {
  std::string op, node, types; // types: "bf16,bf16->f32"
  double seconds = 0;
  int64_t calls = 0;
};

enum class Program { Train, Eval };

/// What the CPU backend runs natively on this machine. Where oneDNN has no
/// GEMM primitive for a low precision, GEMMs of that type are emulated:
/// operands widened to f32, an f32 GEMM, the result rounded once (the same
/// f32-accumulation semantics, at f32 speed rather than bf16 speed).
struct CpuCapabilities {
  std::string model;     // the CPU's name, e.g. "AMD EPYC 7B13"
  std::string onednnIsa; // the ISA oneDNN's kernels use: "avx2", "avx512_core_bf16", ...
  bool bf16GemmNative = false, f16GemmNative = false;
  /// This CPU's bf16 dot products (AVX-512 BF16) per second, in FLOPs,
  /// against its f32 FMAs: measured, about 0.5 on a Sapphire Rapids-class
  /// Xeon, 2 on Zen 4; 0 without them.
  double bf16DotRate = 0;
  /// Whether CpuGemms::Fastest runs bf16 GEMMs natively (a native kernel,
  /// and AMX or a bf16 dot rate of at least kNativeBf16Rate).
  bool bf16NativeFaster = false;
  /// Where it does not, convolutions with output maps of fewer positions
  /// than this still run natively (oneDNN's f32 ones are slow there).
  int64_t nativeConvolutionMapBelow = 0;
  bool vectorConversions = false; // AVX2/F16C f16 conversions (bf16 is vectorised anywhere)
};
/// Probes this CPU (and oneDNN under DNNL_MAX_CPU_ISA, if set).
CpuCapabilities cpuCapabilities();

/// Where plans can run here: "cpu", then "cuda:N NAME" per usable GPU. When
/// there is none, `whyNoGpu` (if given) says why.
std::vector<std::string> listDevices(std::string *whyNoGpu = nullptr);

class Session {
public:
  /// Loads and validates the plan at `path` and allocates its memory.
  static Status create(const std::string &path, const SessionOptions &options,
                       std::unique_ptr<Session> *session);
  /// Same, from a serialized plan held in memory.
  static Status createFromBytes(const std::string &bytes, const std::string &name,
                                const SessionOptions &options,
                                std::unique_ptr<Session> *session);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  /// Batch tensors a program expects (train: inputs and labels).
  const std::vector<TensorInfo> &inputs(Program program) const;
  /// Tensors a program produces (train: loss, maybe gradients; eval: outputs).
  const std::vector<TensorInfo> &outputs(Program program) const;
  /// Persistent tensors: parameters first ("param"), then optimizer state.
  const std::vector<TensorInfo> &states() const;
  /// The ranks a data-parallel plan was compiled for (amp-data-parallel);
  /// 1 for any other plan.
  int64_t dataParallelRanks() const;
  /// Bytes of each program's arena, as the plan's memory planner chose.
  int64_t arenaBytes(Program program) const;

  /// One training step: checks and binds `feeds` (every train input), runs
  /// the step, updates parameters and optimizer state in place. A feed of the
  /// wrong size, a non-finite input or an out-of-range label is an error
  /// naming the input, returned before anything runs. On the CPU it returns
  /// when the step is done; on a GPU once the step is queued (the feeds have
  /// been copied by then, so their memory may be reused at once).
  Status step(const std::vector<Feed> &feeds);
  /// The loss of the last step. On a GPU, steps are queued without waiting
  /// and this call waits for the last one (NaN if the device failed: see
  /// synchronize()).
  float loss() const;
  /// Waits for every queued step. Errors a kernel raised on the device (a
  /// label out of range, say) are reported here, naming the kernel.
  Status synchronize();
  /// "cpu" or the GPU's name.
  const char *deviceName() const;
  /// Low precisions whose GEMMs this session emulates in f32 (CPU without a
  /// native primitive for them), e.g. {DType::BF16}; empty when all native.
  std::vector<DType> emulatedGemmTypes() const;
  /// Low precisions some GEMM or convolution of this session runs widened
  /// by choice (CpuGemms): native kernels exist but are slower here.
  std::vector<DType> widenedGemmTypes() const;
  /// Runs the forward (eval) program on `feeds`.
  Status evaluate(const std::vector<Feed> &feeds);
  /// Copies an output of the last run of `program` into `data`.
  Status readOutput(Program program, const std::string &name, void *data,
                    size_t bytes) const;

  /// With checkNumerics: "op at node 'NAME'" of the first kernel of the last
  /// run that wrote an inf or NaN, or "" if none did.
  const std::string &firstNonFinite() const;

  /// Per-kernel times of `program` since the session began (profile only).
  std::vector<KernelTime> kernelProfile(Program program) const;

  /// Copies a persistent tensor (parameter or optimizer state) out or in.
  Status readState(const std::string &name, void *data, size_t bytes) const;
  Status writeState(const std::string &name, const void *data, size_t bytes);

  /// Writes every state tensor and `metadata` to `path` atomically: a
  /// temporary file beside it, fsync, rename. A crash leaves the previous
  /// file intact.
  Status saveCheckpoint(const std::string &path,
                        const std::map<std::string, std::string> &metadata = {}) const;
  /// Restores every state tensor from `path` after checking its magic,
  /// length, CRC-32, and each tensor's name, type and shape; on any error the
  /// session is left unchanged.
  Status loadCheckpoint(const std::string &path,
                        std::map<std::string, std::string> *metadata = nullptr);

  struct Impl;

private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace amprt

#endif // AMPRT_SESSION_H
