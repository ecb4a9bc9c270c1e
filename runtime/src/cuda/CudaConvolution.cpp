//===- CudaConvolution.cpp - convolutions through cuDNN -------------------===//
//
// conv, conv_backward_data and conv_backward_filter as cuDNN's
// convolution forward, backward-data and backward-filter, on NCHW (or
// NCDHW) tensors. Low precision runs in its own type with FP32 compute on
// Tensor Cores (cuDNN's "pseudo" bf16/f16 configurations); FP32 runs with
// FMA math (no TF32) unless the session allows TF32, as for GEMMs.
//
// cuDNN's convolutions read and write one data type. A result the plan
// wants in f32 from low operands (the filter gradient, FP32 master
// weights' gradient) is written in the low type into shared staging and
// widened: the FP32-accumulated value rounded once to bf16/f16, which is
// what PyTorch autocast's weight gradient is (it flows back through the
// cast of the weight). The CPU backend writes f32 directly.
//
// The algorithm is cuDNN's heuristic choice (no timed search: plans build
// without running anything), preferring deterministic algorithms so that
// a run and its resumption agree. This uses cuDNN's legacy convolution API,
// deprecated in cuDNN 9 but supported; the graph API is its successor.
// Asymmetric padding (auto_pad SAME with an even window) is refused:
// cuDNN pads both sides alike.
//
//===----------------------------------------------------------------------===//

#include "CnnChecks.h"
#include "CudaCnnLaunch.h"
#include "CudaDevice.h"

#include <cudnn.h>

#include <climits>
#include <vector>

namespace amprt::cuda {

namespace {

/// The most workspace one convolution may use.
constexpr size_t kMaxWorkspace = size_t(512) << 20;

cudnnDataType_t cudnnType(DType dtype) {
  return dtype == DType::BF16  ? CUDNN_DATA_BFLOAT16
         : dtype == DType::F16 ? CUDNN_DATA_HALF
                               : CUDNN_DATA_FLOAT;
}

/// A shape as cuDNN needs it: at least two spatial dims (a 1-D
/// convolution gets a leading spatial dim of 1).
std::vector<int> cudnnDims(const std::vector<int64_t> &shape) {
  std::vector<int> dims(shape.begin(), shape.end());
  if (dims.size() == 3)
    dims.insert(dims.begin() + 2, 1);
  return dims;
}

std::vector<int> rowMajorStrides(const std::vector<int> &dims) {
  std::vector<int> strides(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;)
    strides[d - 1] = strides[d] * dims[d];
  return strides;
}

/// One of the three directions, with its descriptors and chosen algorithm.
class ConvolutionKernel : public CudaKernel {
public:
  KernelId id;
  CudaContext *context = nullptr;
  cudnnTensorDescriptor_t src = nullptr, dst = nullptr;
  cudnnFilterDescriptor_t weights = nullptr;
  cudnnConvolutionDescriptor_t convolution = nullptr;
  cudnnConvolutionFwdAlgo_t forwardAlgo{};
  cudnnConvolutionBwdDataAlgo_t dataAlgo{};
  cudnnConvolutionBwdFilterAlgo_t filterAlgo{};
  size_t workspaceBytes = 0;
  const void *in0 = nullptr, *in1 = nullptr; // the plan kernel's operands
  void *out = nullptr;
  bool staged = false; // the result is widened from low staging into f32
  Storage low = Storage::F32;
  int64_t count = 0;   // the result's elements
  size_t outBytes = 0;

  ~ConvolutionKernel() override {
    if (src)
      cudnnDestroyTensorDescriptor(src);
    if (dst)
      cudnnDestroyTensorDescriptor(dst);
    if (weights)
      cudnnDestroyFilterDescriptor(weights);
    if (convolution)
      cudnnDestroyConvolutionDescriptor(convolution);
  }

  /// One run before graph capture: cuDNN loads its kernels at first use,
  /// which a capture must not see. Into a buffer of its own: the result's
  /// arena memory may hold a live value (a feed) at this point.
  Status warmUp() override {
    DeviceScratch scratch;
    AMPRT_RETURN_IF_ERROR(scratch.allocate(outBytes));
    void *planned = out;
    out = scratch.as<void>();
    Status status = run();
    out = planned;
    AMPRT_RETURN_IF_ERROR(status);
    return check(cudaStreamSynchronize(context->stream), "warming up a convolution");
  }

  Status run() override {
    float alpha = 1.0f, beta = 0.0f; // f32 compute: float scaling factors
    void *result = staged ? context->dnnStaging.as<void>() : out;
    void *workspace = context->dnnWorkspace.as<void>();
    cudnnHandle_t handle = context->dnn;
    cudnnStatus_t status;
    if (id == KernelId::Conv)
      status = cudnnConvolutionForward(handle, &alpha, src, in0, weights, in1, convolution,
                                       forwardAlgo, workspace, workspaceBytes, &beta, dst, result);
    else if (id == KernelId::ConvBackwardData)
      status = cudnnConvolutionBackwardData(handle, &alpha, weights, in1, dst, in0, convolution,
                                            dataAlgo, workspace, workspaceBytes, &beta, src,
                                            result);
    else
      status = cudnnConvolutionBackwardFilter(handle, &alpha, src, in0, dst, in1, convolution,
                                              filterAlgo, workspace, workspaceBytes, &beta,
                                              weights, result);
    AMPRT_RETURN_IF_ERROR(check(status, "running a convolution"));
    if (!staged)
      return Status::ok();
    return check(launchWiden(result, low, static_cast<float *>(out), count, context->stream),
                 "widening a convolution's result");
  }
};

/// The first of cuDNN's ranked candidates that succeeded, fits the
/// workspace and has an allowed math type; deterministic ones first.
template <typename Perf>
bool choose(const Perf *perf, int returned, bool allowTensorOps, Perf *chosen) {
  for (bool deterministicOnly : {true, false})
    for (int i = 0; i < returned; ++i) {
      const Perf &p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspace ||
          (deterministicOnly && p.determinism != CUDNN_DETERMINISTIC) ||
          (!allowTensorOps && p.mathType != CUDNN_FMA_MATH && p.mathType != CUDNN_DEFAULT_MATH))
        continue;
      *chosen = p;
      return true;
    }
  return false;
}

Status describe(ConvolutionKernel &k, const ConvTensors &t, const ConvGeometry &g, DType low,
                bool allowTensorOps) {
  size_t spatial = g.strides.size();
  if (spatial > 3)
    return Status::error("cuDNN convolutions have at most 3 spatial dims");
  if (g.padBegin != g.padEnd)
    return Status::error("asymmetric padding does not run on the CUDA backend (cuDNN pads "
                         "both sides alike); use --device cpu");
  std::vector<int> pads(g.padBegin.begin(), g.padBegin.end());
  std::vector<int> strides(g.strides.begin(), g.strides.end());
  std::vector<int> dilations(g.dilations.begin(), g.dilations.end());
  if (spatial == 1) { // as 2-D with a leading spatial dim of 1
    pads.insert(pads.begin(), 0);
    strides.insert(strides.begin(), 1);
    dilations.insert(dilations.begin(), 1);
  }
  cudnnDataType_t type = cudnnType(low);
  std::vector<int> x = cudnnDims(t.src.shape), w = cudnnDims(t.weights.shape),
                   y = cudnnDims(t.dst.shape);
  AMPRT_RETURN_IF_ERROR(check(cudnnCreateTensorDescriptor(&k.src), "a descriptor"));
  AMPRT_RETURN_IF_ERROR(check(cudnnCreateTensorDescriptor(&k.dst), "a descriptor"));
  AMPRT_RETURN_IF_ERROR(check(cudnnCreateFilterDescriptor(&k.weights), "a descriptor"));
  AMPRT_RETURN_IF_ERROR(check(cudnnCreateConvolutionDescriptor(&k.convolution), "a descriptor"));
  AMPRT_RETURN_IF_ERROR(check(cudnnSetTensorNdDescriptor(k.src, type, static_cast<int>(x.size()),
                                                         x.data(), rowMajorStrides(x).data()),
                              "describing the input"));
  AMPRT_RETURN_IF_ERROR(check(cudnnSetTensorNdDescriptor(k.dst, type, static_cast<int>(y.size()),
                                                         y.data(), rowMajorStrides(y).data()),
                              "describing the result"));
  AMPRT_RETURN_IF_ERROR(check(cudnnSetFilterNdDescriptor(k.weights, type, CUDNN_TENSOR_NCHW,
                                                         static_cast<int>(w.size()), w.data()),
                              "describing the filter"));
  AMPRT_RETURN_IF_ERROR(check(
      cudnnSetConvolutionNdDescriptor(k.convolution, static_cast<int>(pads.size()), pads.data(),
                                      strides.data(), dilations.data(), CUDNN_CROSS_CORRELATION,
                                      CUDNN_DATA_FLOAT),
      "describing the convolution"));
  AMPRT_RETURN_IF_ERROR(check(cudnnSetConvolutionGroupCount(k.convolution,
                                                            static_cast<int>(g.group)),
                              "setting the groups"));
  return check(cudnnSetConvolutionMathType(k.convolution, allowTensorOps ? CUDNN_TENSOR_OP_MATH
                                                                         : CUDNN_FMA_MATH),
               "setting the math type");
}

/// Picks the direction's algorithm and records its workspace and math type.
Status chooseAlgorithm(ConvolutionKernel &k, bool allowTensorOps) {
  cudnnHandle_t h = k.context->dnn;
  int returned = 0;
  cudnnMathType_t math{};
  bool found = false;
  if (k.id == KernelId::Conv) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT], chosen;
    AMPRT_RETURN_IF_ERROR(check(
        cudnnGetConvolutionForwardAlgorithm_v7(h, k.src, k.weights, k.convolution, k.dst,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf),
        "choosing an algorithm"));
    if ((found = choose(perf, returned, allowTensorOps, &chosen)))
      k.forwardAlgo = chosen.algo, k.workspaceBytes = chosen.memory, math = chosen.mathType;
  } else if (k.id == KernelId::ConvBackwardData) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT], chosen;
    AMPRT_RETURN_IF_ERROR(check(cudnnGetConvolutionBackwardDataAlgorithm_v7(
                                    h, k.weights, k.dst, k.convolution, k.src,
                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf),
                                "choosing an algorithm"));
    if ((found = choose(perf, returned, allowTensorOps, &chosen)))
      k.dataAlgo = chosen.algo, k.workspaceBytes = chosen.memory, math = chosen.mathType;
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT], chosen;
    AMPRT_RETURN_IF_ERROR(check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                                    h, k.src, k.dst, k.convolution, k.weights,
                                    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf),
                                "choosing an algorithm"));
    if ((found = choose(perf, returned, allowTensorOps, &chosen)))
      k.filterAlgo = chosen.algo, k.workspaceBytes = chosen.memory, math = chosen.mathType;
  }
  if (!found)
    return Status::error("cuDNN has no algorithm for this convolution within " +
                         std::to_string(kMaxWorkspace >> 20) + " MiB of workspace");
  // cuDNN's advice: run with the math type the chosen algorithm reported
  // (FMA whenever tensor ops are not allowed: FP32 without TF32).
  if (!allowTensorOps)
    math = CUDNN_FMA_MATH;
  return check(cudnnSetConvolutionMathType(k.convolution, math), "setting the math type");
}

} // namespace

Status buildCudaConvolution(const proto::Kernel &kernel, KernelId id,
                            const std::vector<TensorRef> &in, const TensorRef &out,
                            CudaContext &context, std::unique_ptr<Kernel> *result) {
  ConvTensors t;
  ConvGeometry g;
  AMPRT_RETURN_IF_ERROR(checkConvolution(kernel, id, in, out, &t, &g));
  if (!context.dnn) {
    AMPRT_RETURN_IF_ERROR(check(cudnnCreate(&context.dnn), "creating the handle"));
    AMPRT_RETURN_IF_ERROR(check(cudnnSetStream(context.dnn, context.stream), "setting the stream"));
  }
  for (const TensorRef *tensor : {&t.src, &t.weights, &t.dst})
    for (int64_t dim : tensor->shape)
      if (tensor->size() > INT_MAX || dim > INT_MAX)
        return Status::error("cuDNN's descriptors take at most 2^31 - 1 elements per tensor");
  if (t.src.size() == 0 || t.weights.size() == 0 || t.dst.size() == 0) {
    // Nothing to convolve (an empty batch): the result is empty or zero.
    void *data = out.data;
    size_t bytes = out.bytes();
    cudaStream_t stream = context.stream;
    *result = launcher([=] { return cudaMemsetAsync(data, 0, bytes, stream); }, "convolution");
    return Status::ok();
  }
  DType low = in[0].dtype;
  auto k = std::make_unique<ConvolutionKernel>();
  k->id = id;
  k->context = &context;
  bool allowTensorOps = low != DType::F32 || context.allowTf32;
  AMPRT_RETURN_IF_ERROR(describe(*k, t, g, low, allowTensorOps));
  AMPRT_RETURN_IF_ERROR(chooseAlgorithm(*k, allowTensorOps));
  AMPRT_RETURN_IF_ERROR(context.dnnWorkspace.reserve(k->workspaceBytes));
  k->in0 = in[0].data;
  k->in1 = in[1].data;
  k->out = out.data;
  k->count = out.size();
  k->outBytes = out.bytes();
  k->staged = out.dtype != low;
  if (k->staged) {
    AMPRT_RETURN_IF_ERROR(fused::storageOf(low, &k->low));
    AMPRT_RETURN_IF_ERROR(context.dnnStaging.reserve(out.size() * dtypeSize(low)));
  }
  *result = std::move(k);
  return Status::ok();
}

} // namespace amprt::cuda
