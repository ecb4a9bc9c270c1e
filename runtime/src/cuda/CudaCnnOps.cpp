//===- CudaCnnOps.cpp - pooling, batch norm, pad/slice/concat, dropout ----===//
//
// Binds the convolutional network's kernels other than convolution
// (CudaConvolution.cpp) to the launches of CudaCnnKernels.cu, after the
// checks both backends share (CnnChecks.h).
//
//===----------------------------------------------------------------------===//

#include "CnnChecks.h"
#include "CudaCnnLaunch.h"
#include "CudaDevice.h"

#include <memory>

namespace amprt::cuda {
namespace {

Storage storageFor(DType dtype) {
  Storage storage = Storage::F32;
  (void)fused::storageOf(dtype, &storage); // the checks admitted float types only
  return storage;
}

/// The planes of a pooling between x (input) and y (result): all that
/// max_pool_grad needs (its indices say where each value goes).
PoolArgs planeArgs(const TensorRef &x, const TensorRef &y) {
  PoolArgs a{};
  a.geometry.rank = static_cast<int>(x.shape.size() - 2);
  for (int d = 0; d < a.geometry.rank; ++d) {
    a.geometry.in[d] = x.shape[d + 2];
    a.geometry.out[d] = y.shape[d + 2];
  }
  a.planes = x.shape[0] * x.shape[1];
  a.inSize = product(x.shape, 2);
  a.outSize = product(y.shape, 2);
  a.type = storageFor(x.dtype);
  return a;
}

/// The planes and the window.
PoolArgs poolArgs(const PoolGeometry &g, const TensorRef &x, const TensorRef &y) {
  PoolArgs a = planeArgs(x, y);
  a.geometry = g;
  return a;
}

/// The f32 sums a pooling gradient scatters into: dx itself when it is
/// f32, else scratch owned by the kernel's launch.
Status gradientSums(const TensorRef &dx, PoolArgs *a, std::shared_ptr<DeviceScratch> *scratch) {
  if (dx.dtype == DType::F32) {
    a->sums = dx.f32();
    return Status::ok();
  }
  *scratch = std::make_shared<DeviceScratch>();
  AMPRT_RETURN_IF_ERROR((*scratch)->allocate(dx.size() * sizeof(float)));
  a->sums = (*scratch)->as<float>();
  return Status::ok();
}

Status buildPooling(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                    const std::vector<TensorRef> &out, CudaContext &context,
                    std::unique_ptr<Kernel> *result) {
  cudaStream_t stream = context.stream;
  PoolGeometry g;
  PoolArgs a;
  std::shared_ptr<DeviceScratch> scratch;
  switch (id) {
  case KernelId::MaxPool:
    AMPRT_RETURN_IF_ERROR(checkMaxPool(kernel, in[0], out[0], out[1], &g));
    a = poolArgs(g, in[0], out[0]);
    a.from = in[0].data;
    a.to = out[0].data;
    a.indices = out[1].i64();
    *result = launcher([=] { return launchMaxPool(a, stream); }, "max_pool");
    return Status::ok();
  case KernelId::MaxPoolGrad:
    AMPRT_RETURN_IF_ERROR(checkMaxPoolGrad(in[0], in[1], out[0]));
    a = planeArgs(out[0], in[0]);
    a.from = in[0].data;
    a.to = out[0].data;
    a.indices = in[1].i64();
    a.error = context.errorSink(kernel, "an index lies outside the input plane");
    AMPRT_RETURN_IF_ERROR(gradientSums(out[0], &a, &scratch));
    *result = launcher(
        [=] {
          (void)scratch; // owned by the launch
          return launchMaxPoolGrad(a, stream);
        },
        "max_pool_grad");
    return Status::ok();
  case KernelId::AvgPool:
    AMPRT_RETURN_IF_ERROR(checkAvgPool(kernel, in[0], out[0], &g));
    a = poolArgs(g, in[0], out[0]);
    a.includePad = attr(kernel, "count_include_pad") != 0;
    a.from = in[0].data;
    a.to = out[0].data;
    *result = launcher([=] { return launchAvgPool(a, stream); }, "avg_pool");
    return Status::ok();
  default: // AvgPoolGrad: dy -> dx
    AMPRT_RETURN_IF_ERROR(checkAvgPool(kernel, out[0], in[0], &g));
    a = poolArgs(g, out[0], in[0]);
    a.includePad = attr(kernel, "count_include_pad") != 0;
    a.from = in[0].data;
    a.to = out[0].data;
    AMPRT_RETURN_IF_ERROR(gradientSums(out[0], &a, &scratch));
    *result = launcher(
        [=] {
          (void)scratch; // owned by the launch
          return launchAvgPoolGrad(a, stream);
        },
        "avg_pool_grad");
    return Status::ok();
  }
}

Status buildBatchNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CudaContext &context,
                      std::unique_ptr<Kernel> *result) {
  BatchNormArgs a{};
  AMPRT_RETURN_IF_ERROR(checkBatchNorm(kernel, id, in, out, &a.epsilon));
  const TensorRef &activation = in[0];
  a.batch = activation.shape[0];
  a.channels = activation.shape[1];
  a.spatial = product(activation.shape, 2);
  a.type = storageFor(activation.dtype);
  cudaStream_t stream = context.stream;
  if (id == KernelId::BatchNorm) {
    a.momentum = static_cast<float>(attr(kernel, "momentum"));
    a.x = in[0].data;
    a.scale = in[1].f32(), a.shift = in[2].f32(), a.mean = in[3].f32(), a.variance = in[4].f32();
    a.y = out[0].data;
    a.runningMeanOut = out[1].f32(), a.runningVarianceOut = out[2].f32();
    a.batchMean = out[3].f32(), a.batchVariance = out[4].f32();
    *result = launcher([=] { return launchBatchNorm(a, stream); }, "batch_norm");
  } else if (id == KernelId::BatchNormInference) {
    a.x = in[0].data;
    a.scale = in[1].f32(), a.shift = in[2].f32(), a.mean = in[3].f32(), a.variance = in[4].f32();
    a.y = out[0].data;
    *result = launcher([=] { return launchBatchNormInference(a, stream); },
                       "batch_norm_inference");
  } else {
    a.globalStats = attr(kernel, "use_global_stats") != 0;
    a.dy = in[0].data, a.x = in[1].data;
    a.scale = in[2].f32(), a.mean = in[3].f32(), a.variance = in[4].f32();
    a.y = out[0].data;
    a.dscale = out[1].f32(), a.dshift = out[2].f32();
    *result = launcher([=] { return launchBatchNormGrad(a, stream); }, "batch_norm_grad");
  }
  return Status::ok();
}

Status buildLayerNorm(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                      const std::vector<TensorRef> &out, CudaContext &context,
                      std::unique_ptr<Kernel> *result) {
  LayerNormShape shape;
  AMPRT_RETURN_IF_ERROR(checkLayerNorm(kernel, id, in, out, &shape));
  LayerNormArgs a{};
  a.rows = shape.rows, a.width = shape.width, a.epsilon = shape.epsilon;
  cudaStream_t stream = context.stream;
  if (id == KernelId::LayerNorm) { // (x, scale, shift) -> (y, mean, inv_std)
    a.type = storageFor(in[0].dtype);
    a.x = in[0].data, a.scale = in[1].f32(), a.shift = in[2].f32();
    a.y = out[0].data, a.mean = out[1].f32(), a.invStd = out[2].f32();
    *result = launcher([=] { return launchLayerNorm(a, stream); }, "layer_norm");
    return Status::ok();
  }
  // (dy, x, scale, mean, inv_std) -> (dx, dscale, dshift)
  a.type = storageFor(in[1].dtype);
  a.dy = in[0].data, a.x = in[1].data, a.scale = in[2].f32();
  a.mean = in[3].f32(), a.invStd = in[4].f32();
  a.y = out[0].data, a.dscale = out[1].f32(), a.dshift = out[2].f32();
  *result = launcher([=] { return launchLayerNormGrad(a, stream); }, "layer_norm_grad");
  return Status::ok();
}

Status buildGather(const proto::Kernel &kernel, KernelId id, const std::vector<TensorRef> &in,
                   const TensorRef &out, CudaContext &context, std::unique_ptr<Kernel> *result) {
  GatherShape g;
  AMPRT_RETURN_IF_ERROR(checkGather(kernel, id, in, out, &g));
  GatherArgs a{g.outer, g.size, g.count, g.inner, static_cast<int>(dtypeSize(out.dtype)),
               in[1].data, in[1].dtype == DType::I32, in[0].data, out.data,
               context.errorSink(kernel, "an index lies outside the gathered dim")};
  cudaStream_t stream = context.stream;
  if (id == KernelId::Gather)
    *result = launcher([=] { return launchGather(a, stream); }, "gather");
  else
    *result = launcher([=] { return launchGatherGrad(a, stream); }, "gather_grad");
  return Status::ok();
}

/// Row-major strides (in elements) of `shape`.
std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

/// A box copy of `box` at `from` in src to `to` in dst.
BoxArgs boxArgs(const TensorRef &src, const std::vector<int64_t> &from, const TensorRef &dst,
                const std::vector<int64_t> &to, const std::vector<int64_t> &box) {
  BoxArgs a{};
  a.rank = static_cast<int>(box.size());
  std::vector<int64_t> srcStrides = stridesOf(src.shape), dstStrides = stridesOf(dst.shape);
  for (int d = 0; d < a.rank; ++d) {
    a.srcStrides[d] = srcStrides[d];
    a.dstStrides[d] = dstStrides[d];
    a.from[d] = from[d];
    a.to[d] = to[d];
    a.box[d] = box[d];
  }
  a.elementSize = static_cast<int>(dtypeSize(dst.dtype));
  a.src = src.data;
  a.dst = dst.data;
  return a;
}

Status buildDataMovement(const proto::Kernel &kernel, KernelId id,
                         const std::vector<TensorRef> &in, const TensorRef &out,
                         CudaContext &context, std::unique_ptr<Kernel> *result) {
  DataMovement m;
  AMPRT_RETURN_IF_ERROR(checkDataMovement(kernel, id, in, out, &m));
  size_t rank = out.shape.size();
  if (rank > static_cast<size_t>(fused::kMaxRank))
    return Status::error("rank above " + std::to_string(fused::kMaxRank));
  cudaStream_t stream = context.stream;
  std::vector<int64_t> zeros(rank, 0);
  if (id == KernelId::Slice) {
    BoxArgs a = boxArgs(in[0], m.corner, out, zeros, out.shape);
    *result = launcher([=] { return launchCopyBox(a, stream); }, "slice");
    return Status::ok();
  }
  if (id == KernelId::Pad) {
    BoxArgs a = boxArgs(in[0], zeros, out, m.corner, in[0].shape);
    Storage type = storageFor(out.dtype);
    void *data = out.data;
    float value = m.value;
    int64_t count = out.size();
    *result = launcher(
        [=] {
          cudaError_t filled = launchFill(data, type, value, count, stream);
          return filled != cudaSuccess ? filled : launchCopyBox(a, stream);
        },
        "pad");
    return Status::ok();
  }
  if (id == KernelId::Transpose) {
    // The whole result, read from the input with its strides permuted.
    BoxArgs a = boxArgs(in[0], zeros, out, zeros, out.shape);
    std::vector<int64_t> inStrides = stridesOf(in[0].shape);
    for (size_t d = 0; d < rank; ++d)
      a.srcStrides[d] = inStrides[m.permutation[d]];
    *result = launcher([=] { return launchCopyBox(a, stream); }, "transpose");
    return Status::ok();
  }
  std::vector<BoxArgs> copies; // concat: each input to its place along the axis
  std::vector<int64_t> to = zeros;
  for (const TensorRef &x : in) {
    copies.push_back(boxArgs(x, zeros, out, to, x.shape));
    to[m.axis] += x.shape[m.axis];
  }
  *result = launcher(
      [=] {
        for (const BoxArgs &a : copies)
          if (cudaError_t e = launchCopyBox(a, stream); e != cudaSuccess)
            return e;
        return cudaSuccess;
      },
      "concat");
  return Status::ok();
}

Status buildDropout(const proto::Kernel &kernel, const std::vector<TensorRef> &in,
                    const TensorRef &out, CudaContext &context, std::unique_ptr<Kernel> *result) {
  DropoutParams p;
  AMPRT_RETURN_IF_ERROR(checkDropout(kernel, in, out, &p));
  DropoutArgs a{in[0].data, out.data, storageFor(out.dtype), out.size(), in[1].i64(),
                p.seed, p.threshold, p.scale};
  cudaStream_t stream = context.stream;
  *result = launcher([=] { return launchDropout(a, stream); }, "dropout");
  return Status::ok();
}

} // namespace

Status buildCudaCnnKernel(const proto::Kernel &kernel, KernelId id,
                          const std::vector<TensorRef> &in, const std::vector<TensorRef> &out,
                          CudaContext &context, std::unique_ptr<Kernel> *result) {
  switch (id) {
  case KernelId::MaxPool:
  case KernelId::MaxPoolGrad:
  case KernelId::AvgPool:
  case KernelId::AvgPoolGrad:
    return buildPooling(kernel, id, in, out, context, result);
  case KernelId::BatchNorm:
  case KernelId::BatchNormInference:
  case KernelId::BatchNormGrad:
    return buildBatchNorm(kernel, id, in, out, context, result);
  case KernelId::LayerNorm:
  case KernelId::LayerNormGrad:
    return buildLayerNorm(kernel, id, in, out, context, result);
  case KernelId::Pad:
  case KernelId::Slice:
  case KernelId::Concat:
  case KernelId::Transpose:
    return buildDataMovement(kernel, id, in, out[0], context, result);
  case KernelId::Gather:
  case KernelId::GatherGrad:
    return buildGather(kernel, id, in, out[0], context, result);
  case KernelId::Dropout:
    return buildDropout(kernel, in, out[0], context, result);
  default:
    return Status::error("not a convolutional network kernel");
  }
}

} // namespace amprt::cuda
