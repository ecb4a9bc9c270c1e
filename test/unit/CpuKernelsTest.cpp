//===- CpuKernelsTest.cpp - CPU kernels against FP64 references -----------===//

#include "ConvolutionReference.h"
#include "CpuKernels.h"
#include "FusedElementwise.h"
#include "KernelMath.h"

#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <tuple>

using namespace amprt;

namespace {

/// A float tensor owned by the test, viewable as a TensorRef.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  explicit Tensor(std::vector<int64_t> s, unsigned seed = 0) : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    data.resize(n);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (float &x : data)
      x = seed ? uniform(rng) : 0.0f;
  }
  TensorRef ref() { return {data.data(), DType::F32, shape}; }
};

/// A bf16 or f16 tensor holding the rounded values of a float tensor.
struct LowTensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint16_t> bits;
  LowTensor(const Tensor &source, DType dtype) : dtype(dtype), shape(source.shape) {
    for (float x : source.data)
      bits.push_back(dtype == DType::BF16 ? math::floatToBf16(x) : math::floatToF16(x));
  }
  LowTensor(std::vector<int64_t> s, DType dtype) : LowTensor(Tensor(std::move(s)), dtype) {}
  float value(size_t i) const {
    return dtype == DType::BF16 ? math::bf16ToFloat(bits[i]) : math::f16ToFloat(bits[i]);
  }
  TensorRef ref() { return {bits.data(), dtype, shape}; }
};

struct Labels {
  std::vector<int64_t> data;
  TensorRef ref() { return {data.data(), DType::I64, {static_cast<int64_t>(data.size())}}; }
};

/// A kernel `op` with `attrs`.
proto::Kernel kernelOf(const std::string &op, const std::map<std::string, double> &attrs) {
  proto::Kernel kernel;
  kernel.set_op(op);
  kernel.set_node("test");
  for (auto &[k, v] : attrs)
    (*kernel.mutable_attrs())[k] = v;
  return kernel;
}

class CpuKernels : public ::testing::Test {
protected:
  Status run(const std::string &op, std::vector<TensorRef> in, std::vector<TensorRef> out,
             std::map<std::string, double> attrs = {}, std::vector<int64_t> axes = {}) {
    proto::Kernel kernel = kernelOf(op, attrs);
    for (int64_t a : axes)
      kernel.add_axes(a);
    std::unique_ptr<CpuKernel> built;
    AMPRT_RETURN_IF_ERROR(buildCpuKernel(kernel, std::move(in), std::move(out), context, &built));
    return built->run();
  }
  CpuContext context;
};

double at(const Tensor &t, int64_t r, int64_t c, bool transposed) {
  int64_t cols = t.shape[1];
  return transposed ? t.data[c * cols + r] : t.data[r * cols + c];
}

TEST_F(CpuKernels, MatmulAllTransposesMatchDoubleReference) {
  const int64_t m = 7, k = 13, n = 5;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a(ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k}, 1);
      Tensor b(tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}, 2);
      Tensor c({m, n});
      ASSERT_TRUE(run("matmul", {a.ref(), b.ref()}, {c.ref()},
                      {{"transpose_lhs", ta}, {"transpose_rhs", tb}}).isOk());
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double expected = 0;
          for (int64_t p = 0; p < k; ++p)
            expected += at(a, i, p, ta) * at(b, p, j, tb);
          EXPECT_NEAR(c.data[i * n + j], expected, 1e-5) << ta << tb << " at " << i << "," << j;
        }
    }
}

/// Low-precision GEMMs multiply the rounded operands exactly enough that
/// only accumulation order differs from FP64; the result is rounded on store.
TEST_F(CpuKernels, LowPrecisionMatmulsAccumulateInFp32) {
  const int64_t m = 9, k = 64, n = 7;
  for (DType low : {DType::BF16, DType::F16})
    for (DType out : {low, DType::F32}) {
      Tensor a32({m, k}, 5), b32({n, k}, 6);
      LowTensor a(a32, low), b(b32, low);
      Tensor c32({m, n});
      LowTensor cLow(std::vector<int64_t>{m, n}, low);
      TensorRef c = out == DType::F32 ? c32.ref() : cLow.ref();
      ASSERT_TRUE(run("matmul", {a.ref(), b.ref()}, {c}, {{"transpose_rhs", 1}}).isOk())
          << dtypeName(low);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double expected = 0;
          for (int64_t p = 0; p < k; ++p)
            expected += double(a.value(i * k + p)) * b.value(j * k + p);
          double got = out == DType::F32 ? c32.data[i * n + j] : cLow.value(i * n + j);
          // f32 accumulation error, plus one rounding to the output type.
          double tolerance = 1e-5 + (out == DType::F32 ? 0.0
                                     : std::abs(expected) * (low == DType::BF16 ? 0x1p-8 : 0x1p-11));
          EXPECT_NEAR(got, expected, tolerance) << dtypeName(low) << " -> " << dtypeName(out);
        }
    }
}

/// Batched GEMMs ([2, 3] batch dims) in every precision and transpose: each
/// batch index is its own GEMM against the FP64 product of the stored values.
TEST_F(CpuKernels, BatchedMatmulsMatchDoubleReferencePerBatch) {
  const int64_t batch = 6, m = 5, k = 9, n = 4;
  for (DType type : {DType::F32, DType::BF16, DType::F16})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        Tensor a32({2, 3, ta ? k : m, ta ? m : k}, 7), b32({2, 3, tb ? n : k, tb ? k : n}, 8);
        LowTensor aLow(a32, type == DType::F32 ? DType::BF16 : type), bLow(b32, aLow.dtype);
        bool f32 = type == DType::F32;
        Tensor c({2, 3, m, n});
        std::vector<TensorRef> in = f32 ? std::vector<TensorRef>{a32.ref(), b32.ref()}
                                        : std::vector<TensorRef>{aLow.ref(), bLow.ref()};
        ASSERT_TRUE(run("matmul", in, {c.ref()}, {{"transpose_lhs", ta}, {"transpose_rhs", tb}})
                        .isOk())
            << dtypeName(type);
        auto value = [&](const Tensor &t32, const LowTensor &low, int64_t i) {
          return f32 ? double(t32.data[i]) : double(low.value(i));
        };
        for (int64_t q = 0; q < batch; ++q)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double expected = 0;
              for (int64_t p = 0; p < k; ++p) {
                int64_t ia = q * m * k + (ta ? p * m + i : i * k + p);
                int64_t ib = q * k * n + (tb ? j * k + p : p * n + j);
                expected += value(a32, aLow, ia) * value(b32, bLow, ib);
              }
              EXPECT_NEAR(c.data[(q * m + i) * n + j], expected, 1e-5)
                  << dtypeName(type) << " " << ta << tb << " batch " << q;
            }
      }
}

/// gather along a middle axis with negative indices, its scatter-add with a
/// repeated index, and an index out of range refused before anything moves.
TEST_F(CpuKernels, GatherAndScatterAddAlongAnAxis) {
  Tensor table({2, 3, 4}, 9), gathered({2, 2, 4});
  Labels indices{{2, -3}}; // rows 2 and 0
  TensorRef idx = {indices.data.data(), DType::I64, {2}};
  ASSERT_TRUE(run("gather", {table.ref(), idx}, {gathered.ref()}, {{"axis", 1}}).isOk());
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t j = 0; j < 4; ++j) {
      EXPECT_EQ(gathered.data[(o * 2 + 0) * 4 + j], table.data[(o * 3 + 2) * 4 + j]);
      EXPECT_EQ(gathered.data[(o * 2 + 1) * 4 + j], table.data[(o * 3 + 0) * 4 + j]);
    }
  Labels repeated{{1, 1}};
  TensorRef twice = {repeated.data.data(), DType::I64, {2}};
  Tensor dTable({2, 3, 4}, 3);
  ASSERT_TRUE(run("gather_grad", {gathered.ref(), twice}, {dTable.ref()}, {{"axis", 1}}).isOk());
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t j = 0; j < 4; ++j) {
        float expected = r != 1 ? 0.0f
                                : gathered.data[(o * 2 + 0) * 4 + j] +
                                      gathered.data[(o * 2 + 1) * 4 + j];
        EXPECT_EQ(dTable.data[(o * 3 + r) * 4 + j], expected);
      }
  Labels outside{{0, 3}};
  TensorRef bad = {outside.data.data(), DType::I64, {2}};
  Status status = run("gather", {table.ref(), bad}, {gathered.ref()}, {{"axis", 1}});
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("index 3 at position 1 is outside [-3, 3)"), std::string::npos)
      << status.message();
}

/// int32 indices (token ids as some exporters write them) pick, scatter and
/// refuse exactly as int64 ones do; float kernels refuse an int32 tensor.
TEST_F(CpuKernels, GatherReadsInt32IndicesAsInt64Ones) {
  Tensor table({5, 3}, 4), wide({2, 3, 3}), narrow({2, 3, 3});
  Labels indices{{4, -1, 0, 2, 2, -5}};
  std::vector<int32_t> indices32(indices.data.begin(), indices.data.end());
  TensorRef idx64 = {indices.data.data(), DType::I64, {2, 3}};
  TensorRef idx32 = {indices32.data(), DType::I32, {2, 3}};
  ASSERT_TRUE(run("gather", {table.ref(), idx64}, {wide.ref()}, {{"axis", 0}}).isOk());
  ASSERT_TRUE(run("gather", {table.ref(), idx32}, {narrow.ref()}, {{"axis", 0}}).isOk());
  EXPECT_EQ(narrow.data, wide.data);
  Tensor dWide({5, 3}, 1), dNarrow({5, 3}, 2);
  ASSERT_TRUE(run("gather_grad", {wide.ref(), idx64}, {dWide.ref()}, {{"axis", 0}}).isOk());
  ASSERT_TRUE(run("gather_grad", {wide.ref(), idx32}, {dNarrow.ref()}, {{"axis", 0}}).isOk());
  EXPECT_EQ(dNarrow.data, dWide.data);
  indices32[5] = -6;
  Status status = run("gather", {table.ref(), idx32}, {narrow.ref()}, {{"axis", 0}});
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("index -6 at position 5 is outside [-5, 5)"), std::string::npos)
      << status.message();
  Tensor y({2, 3});
  std::vector<int32_t> ints(6, 1);
  EXPECT_FALSE(run("relu", {{ints.data(), DType::I32, {2, 3}}}, {y.ref()}).isOk());
}

/// Integers (ids, an integer mask) cast to floats round to nearest even:
/// 2^24 + 1 is not an f32, 257 not a bf16, 2049 not an f16.
TEST_F(CpuKernels, IntegerCastsRoundToNearestEven) {
  Labels wide{{-3, 0, 16777217, 257, 2049, int64_t{1} << 40}};
  std::vector<int32_t> narrow = {-3, 0, 16777217, 257, 2049, 7};
  Tensor f32({6});
  ASSERT_TRUE(run("cast", {{wide.data.data(), DType::I64, {6}}}, {f32.ref()}).isOk());
  EXPECT_EQ(f32.data, (std::vector<float>{-3.0f, 0.0f, 16777216.0f, 257.0f, 2049.0f,
                                          1099511627776.0f}));
  LowTensor bf16(std::vector<int64_t>{6}, DType::BF16), f16(std::vector<int64_t>{6}, DType::F16);
  ASSERT_TRUE(run("cast", {{narrow.data(), DType::I32, {6}}}, {bf16.ref()}).isOk());
  ASSERT_TRUE(run("cast", {{narrow.data(), DType::I32, {6}}}, {f16.ref()}).isOk());
  EXPECT_EQ(bf16.value(3), 256.0f);
  EXPECT_EQ(f16.value(4), 2048.0f);
  EXPECT_EQ(f16.value(0), -3.0f);
  EXPECT_TRUE(std::isinf(f16.value(2))); // past f16's 65504
  Labels shorter{{1, 2}};
  EXPECT_FALSE(run("cast", {{shorter.data.data(), DType::I64, {2}}}, {f32.ref()}).isOk());
}

/// Booleans at the graph boundary: bytes (any nonzero is true) to 0/1
/// floats, and floats to bytes, true where not 0 (NaN too, as ONNX's Cast;
/// -0 is 0).
TEST_F(CpuKernels, BoolCastsAreZeroOrOne) {
  std::vector<uint8_t> flags = {0, 1, 7, 0};
  LowTensor halves(std::vector<int64_t>{4}, DType::BF16);
  ASSERT_TRUE(run("cast", {{flags.data(), DType::Bool, {4}}}, {halves.ref()}).isOk());
  EXPECT_EQ((std::vector<float>{halves.value(0), halves.value(1), halves.value(2),
                                halves.value(3)}),
            (std::vector<float>{0.0f, 1.0f, 1.0f, 0.0f}));
  Tensor x({4});
  x.data = {-0.0f, 2.5f, std::nanf(""), 0.0f};
  std::vector<uint8_t> out(4, 9);
  ASSERT_TRUE(run("cast", {x.ref()}, {{out.data(), DType::Bool, {4}}}).isOk());
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_FALSE(run("relu", {{flags.data(), DType::Bool, {4}}}, {x.ref()}).isOk());
}

TEST_F(CpuKernels, ElementwiseInLowPrecisionRoundsOnStore) {
  Tensor a32({4, 8}, 1), b32({8}, 2);
  for (DType low : {DType::BF16, DType::F16}) {
    LowTensor a(a32, low), b(b32, low), c(std::vector<int64_t>{4, 8}, low);
    ASSERT_TRUE(run("add", {a.ref(), b.ref()}, {c.ref()}).isOk());
    for (size_t i = 0; i < 32; ++i) {
      float exact = a.value(i) + b.value(i % 8);
      uint16_t rounded = low == DType::BF16 ? math::floatToBf16(exact) : math::floatToF16(exact);
      EXPECT_EQ(c.bits[i], rounded) << dtypeName(low) << " at " << i;
    }
    LowTensor r(std::vector<int64_t>{4, 8}, low);
    ASSERT_TRUE(run("relu", {a.ref()}, {r.ref()}).isOk());
    for (size_t i = 0; i < 32; ++i)
      EXPECT_EQ(r.value(i), std::max(a.value(i), 0.0f));
  }
}

TEST_F(CpuKernels, CastsRoundToNearestEvenBothWays) {
  Tensor x({100}, 9);
  for (float &v : x.data)
    v *= 1000.0f;
  for (DType low : {DType::BF16, DType::F16}) {
    LowTensor narrow(std::vector<int64_t>{100}, low);
    ASSERT_TRUE(run("cast", {x.ref()}, {narrow.ref()}).isOk());
    Tensor wide({100});
    ASSERT_TRUE(run("cast", {narrow.ref()}, {wide.ref()}).isOk());
    for (size_t i = 0; i < 100; ++i) {
      uint16_t expected =
          low == DType::BF16 ? math::floatToBf16(x.data[i]) : math::floatToF16(x.data[i]);
      EXPECT_EQ(narrow.bits[i], expected);
      EXPECT_EQ(wide.data[i], narrow.value(i)); // widening is exact
    }
  }
}

TEST_F(CpuKernels, SensitiveKernelsRefuseLowPrecisionInputs) {
  LowTensor logits(std::vector<int64_t>{2, 3}, DType::BF16);
  Labels labels{{0, 1}};
  Tensor loss({});
  Status s = run("softmax_cross_entropy", {logits.ref(), labels.ref()}, {loss.ref()});
  EXPECT_FALSE(s.isOk());
  LowTensor lowSum(std::vector<int64_t>{3}, DType::BF16);
  s = run("reduce_sum", {logits.ref()}, {lowSum.ref()}, {}, {0});
  EXPECT_NE(s.message().find("reduce_sum runs in f32 on the CPU, got bf16"), std::string::npos)
      << s.message();
}

// A reduction reads bf16/f16 itself (no cast kernel before it): its result
// is, bit for bit, that of the f32 cast of its input, on each layout (kept
// inner dim, split across threads for large ones; reduced inner dim; all).
TEST_F(CpuKernels, ReductionsReadLowPrecisionAsTheirF32Cast) {
  for (DType type : {DType::BF16, DType::F16})
    for (const char *op : {"reduce_sum", "reduce_max"})
      for (auto [shape, axes] :
           {std::pair<std::vector<int64_t>, std::vector<int64_t>>{{300, 512}, {0}},
            {{4, 6, 130}, {0, 1}},
            {{4, 6, 5}, {2}},
            {{4, 6, 5}, {0, 1, 2}}}) {
        Tensor source(shape, 31);
        LowTensor low(source, type);
        Tensor wide(shape);
        for (size_t i = 0; i < wide.data.size(); ++i)
          wide.data[i] = low.value(i);
        std::vector<int64_t> kept;
        for (size_t d = 0; d < shape.size(); ++d)
          if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) == axes.end())
            kept.push_back(shape[d]);
        Tensor fromLow(kept), fromWide(kept);
        ASSERT_TRUE(run(op, {wide.ref()}, {fromWide.ref()}, {}, axes).isOk());
        Status s = run(op, {low.ref()}, {fromLow.ref()}, {}, axes);
        ASSERT_TRUE(s.isOk()) << s.message();
        for (size_t i = 0; i < fromLow.data.size(); ++i)
          ASSERT_EQ(math::floatBits(fromLow.data[i]), math::floatBits(fromWide.data[i]))
              << op << " " << dtypeName(type) << " output " << i;
      }
}

TEST_F(CpuKernels, MatmulRejectsMismatchedShapes) {
  Tensor a({2, 3}, 1), b({4, 5}, 2), c({2, 5});
  Status s = run("matmul", {a.ref(), b.ref()}, {c.ref()});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("node 'test'"), std::string::npos) << s.message();
}

TEST_F(CpuKernels, BroadcastBinaryOps) {
  Tensor a({2, 3, 4}, 1), row({4}, 2), col({3, 1}, 3), c({2, 3, 4});
  ASSERT_TRUE(run("add", {a.ref(), row.ref()}, {c.ref()}).isOk());
  for (int64_t i = 0; i < 24; ++i)
    EXPECT_FLOAT_EQ(c.data[i], a.data[i] + row.data[i % 4]);
  ASSERT_TRUE(run("sub", {a.ref(), col.ref()}, {c.ref()}).isOk());
  for (int64_t i = 0; i < 24; ++i)
    EXPECT_FLOAT_EQ(c.data[i], a.data[i] - col.data[(i / 4) % 3]);
  ASSERT_TRUE(run("mul", {col.ref(), a.ref()}, {c.ref()}).isOk());
  for (int64_t i = 0; i < 24; ++i)
    EXPECT_FLOAT_EQ(c.data[i], col.data[(i / 4) % 3] * a.data[i]);
  Tensor wrong({3}, 4);
  EXPECT_FALSE(run("add", {a.ref(), wrong.ref()}, {c.ref()}).isOk());
}

TEST_F(CpuKernels, ReduceSumOverAxes) {
  Tensor x({3, 4, 5}, 1);
  Tensor rows({4, 5}), middle({3, 1, 5}), all({});
  ASSERT_TRUE(run("reduce_sum", {x.ref()}, {rows.ref()}, {}, {0}).isOk());
  ASSERT_TRUE(run("reduce_sum", {x.ref()}, {middle.ref()}, {}, {1}).isOk());
  ASSERT_TRUE(run("reduce_sum", {x.ref()}, {all.ref()}, {}, {0, 1, 2}).isOk());
  double total = 0;
  for (int64_t j = 0; j < 4; ++j)
    for (int64_t k = 0; k < 5; ++k) {
      double s = 0;
      for (int64_t i = 0; i < 3; ++i)
        s += x.data[(i * 4 + j) * 5 + k];
      EXPECT_NEAR(rows.data[j * 5 + k], s, 1e-5);
    }
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 5; ++k) {
      double s = 0;
      for (int64_t j = 0; j < 4; ++j)
        s += x.data[(i * 4 + j) * 5 + k];
      EXPECT_NEAR(middle.data[i * 5 + k], s, 1e-5);
      total += s;
    }
  EXPECT_NEAR(all.data[0], total, 1e-4);
}

// A bias gradient's column sums ([tokens, features] -> [features]) split
// across the threads by columns: each sums its rows in order, so one thread
// and two give the same bits, and both match double precision.
TEST_F(CpuKernels, ColumnSumsAreTheSameOnAnyThreadCount) {
  Tensor x({300, 512}, 3), one({512}), two({512});
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  ASSERT_TRUE(run("reduce_sum", {x.ref()}, {one.ref()}, {}, {0}).isOk());
  omp_set_num_threads(2);
  ASSERT_TRUE(run("reduce_sum", {x.ref()}, {two.ref()}, {}, {0}).isOk());
  omp_set_num_threads(threads);
  for (int64_t c = 0; c < 512; ++c) {
    double sum = 0;
    for (int64_t r = 0; r < 300; ++r)
      sum += x.data[r * 512 + c];
    ASSERT_EQ(math::floatBits(one.data[c]), math::floatBits(two.data[c])) << c;
    EXPECT_NEAR(one.data[c], sum, 1e-4) << c;
  }
}

// reduce_max over the kept-inner and the dropped-inner layouts; a NaN wins
// (torch.amax), where std::max would keep or drop it depending on order.
TEST_F(CpuKernels, ReduceMaxOverAxesLetsNaNWin) {
  Tensor x({3, 4, 5}, 2);
  x.data[(1 * 4 + 2) * 5 + 3] = NAN; // row (1, :, 3) and column (1, 2, :)
  Tensor columns({1, 4, 5}), lastAxis({3, 4});
  ASSERT_TRUE(run("reduce_max", {x.ref()}, {columns.ref()}, {}, {0}).isOk());
  ASSERT_TRUE(run("reduce_max", {x.ref()}, {lastAxis.ref()}, {}, {2}).isOk());
  for (int64_t j = 0; j < 4; ++j)
    for (int64_t k = 0; k < 5; ++k) {
      float expected = -INFINITY;
      for (int64_t i = 0; i < 3; ++i)
        expected = std::isnan(expected) ? expected : std::fmax(expected, x.data[(i * 4 + j) * 5 + k]);
      if (j == 2 && k == 3)
        EXPECT_TRUE(std::isnan(columns.data[j * 5 + k]));
      else
        EXPECT_EQ(columns.data[j * 5 + k], expected) << j << "," << k;
    }
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      float expected = -INFINITY;
      for (int64_t k = 0; k < 5; ++k)
        expected = std::fmax(expected, x.data[(i * 4 + j) * 5 + k]);
      if (i == 1 && j == 2)
        EXPECT_TRUE(std::isnan(lastAxis.data[i * 4 + j]));
      else
        EXPECT_EQ(lastAxis.data[i * 4 + j], expected) << i << "," << j;
    }
}

/// Mean softmax cross-entropy in double.
double crossEntropy(const std::vector<float> &logits, const std::vector<int64_t> &labels,
                    int64_t classes) {
  double total = 0;
  int64_t n = labels.size();
  for (int64_t i = 0; i < n; ++i) {
    double mx = -1e300, sum = 0;
    for (int64_t c = 0; c < classes; ++c)
      mx = std::max(mx, double(logits[i * classes + c]));
    for (int64_t c = 0; c < classes; ++c)
      sum += std::exp(logits[i * classes + c] - mx);
    total += mx + std::log(sum) - logits[i * classes + labels[i]];
  }
  return total / n;
}

TEST_F(CpuKernels, CrossEntropyAndGradientMatchReferenceAndFiniteDifferences) {
  const int64_t n = 6, classes = 4;
  Tensor logits({n, classes}, 5);
  for (float &x : logits.data)
    x *= 8.0f; // large logits exercise the max-shifted log-sum-exp
  Labels labels{{0, 3, 1, 2, 3, 0}};
  Tensor loss({}), one({}), grad({n, classes});
  one.data[0] = 1.0f;
  ASSERT_TRUE(run("softmax_cross_entropy", {logits.ref(), labels.ref()}, {loss.ref()},
                  {{"mean", 1}}).isOk());
  EXPECT_NEAR(loss.data[0], crossEntropy(logits.data, labels.data, classes), 1e-5);
  ASSERT_TRUE(run("softmax_cross_entropy_grad", {one.ref(), logits.ref(), labels.ref()},
                  {grad.ref()}, {{"mean", 1}}).isOk());
  // Central differences of the FP64 reference.
  for (int64_t i = 0; i < n * classes; ++i) {
    std::vector<float> plus = logits.data, minus = logits.data;
    const float h = 1e-2f;
    plus[i] += h;
    minus[i] -= h;
    double numeric = (crossEntropy(plus, labels.data, classes) -
                      crossEntropy(minus, labels.data, classes)) / (2 * h);
    EXPECT_NEAR(grad.data[i], numeric, 2e-4) << "logit " << i;
  }
}

TEST_F(CpuKernels, CrossEntropyRejectsOutOfRangeLabels) {
  Tensor logits({2, 3}, 1), loss({});
  Labels labels{{0, 3}};
  Status s = run("softmax_cross_entropy", {logits.ref(), labels.ref()}, {loss.ref()});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("label 3 at row 1 is outside [0, 3)"), std::string::npos)
      << s.message();
}

TEST_F(CpuKernels, UnknownKernelAndWrongArityAreErrors) {
  Tensor x({2}, 1), y({2});
  EXPECT_FALSE(run("conv", {x.ref()}, {y.ref()}).isOk());
  EXPECT_FALSE(run("relu", {x.ref(), x.ref()}, {y.ref()}).isOk());
}

} // namespace

namespace {

/// A GEMM with its bias/relu epilogue equals the FP64 product plus bias,
/// through relu, rounded once to C's type.
TEST_F(CpuKernels, MatmulEpilogueAddsBiasAndReluBeforeRounding) {
  const int64_t m = 6, k = 32, n = 5;
  for (DType type : {DType::F32, DType::BF16, DType::F16})
    for (int relu = 0; relu < 2; ++relu) {
      Tensor a32({m, k}, 11), b32({n, k}, 12), bias32({n}, 13);
      LowTensor aLow(a32, type == DType::F32 ? DType::BF16 : type), bLow(b32, aLow.dtype),
          biasLow(bias32, aLow.dtype);
      bool f32 = type == DType::F32;
      Tensor c32({m, n});
      LowTensor cLow(std::vector<int64_t>{m, n}, aLow.dtype);
      std::vector<TensorRef> in = f32 ? std::vector<TensorRef>{a32.ref(), b32.ref(), bias32.ref()}
                                      : std::vector<TensorRef>{aLow.ref(), bLow.ref(), biasLow.ref()};
      ASSERT_TRUE(run("matmul", in, {f32 ? c32.ref() : cLow.ref()},
                      {{"transpose_rhs", 1}, {"bias", 1}, {"relu", relu}}).isOk())
          << dtypeName(type);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double expected = f32 ? bias32.data[j] : biasLow.value(j);
          for (int64_t p = 0; p < k; ++p)
            expected += f32 ? double(a32.data[i * k + p]) * b32.data[j * k + p]
                            : double(aLow.value(i * k + p)) * bLow.value(j * k + p);
          if (relu)
            expected = std::max(expected, 0.0);
          double got = f32 ? c32.data[i * n + j] : cLow.value(i * n + j);
          double tolerance = f32 ? 1e-5 : std::abs(expected) * (type == DType::BF16 ? 8e-3 : 1e-3) + 1e-5;
          EXPECT_NEAR(got, expected, tolerance) << dtypeName(type) << " relu " << relu;
        }
    }
}

/// Regression: oneDNN's relu post-op computes max(x, 0), which made a NaN
/// from the GEMM 0 and hid it from the non-finite check. The fused epilogue
/// must write what matmul followed by the relu kernel writes, NaN included,
/// in every precision (native or emulated GEMM).
TEST_F(CpuKernels, MatmulReluEpilogueKeepsNaNLikeTheUnfusedRelu) {
  const int64_t m = 4, k = 16, n = 24;
  for (DType type : {DType::F32, DType::BF16, DType::F16}) {
    Tensor a32({m, k}, 31), b32({n, k}, 32), bias32({n}, 33);
    a32.data[1 * k + 3] = std::nanf(""); // row 1 of the result is NaN
    a32.data[2 * k + 5] = -INFINITY;     // row 2: -inf or NaN, never a silent 0
    bool f32 = type == DType::F32;
    LowTensor a(a32, f32 ? DType::BF16 : type), b(b32, a.dtype), bias(bias32, a.dtype);
    auto in = [&]() {
      return f32 ? std::vector<TensorRef>{a32.ref(), b32.ref(), bias32.ref()}
                 : std::vector<TensorRef>{a.ref(), b.ref(), bias.ref()};
    };
    Tensor fused32({m, n}), plain32({m, n}), relu32({m, n});
    LowTensor fusedLow(std::vector<int64_t>{m, n}, a.dtype), plainLow(fusedLow), reluLow(fusedLow);
    auto out = [&](Tensor &t32, LowTensor &low) { return f32 ? t32.ref() : low.ref(); };
    ASSERT_TRUE(run("matmul", in(), {out(fused32, fusedLow)},
                    {{"transpose_rhs", 1}, {"bias", 1}, {"relu", 1}}).isOk());
    ASSERT_TRUE(run("matmul", in(), {out(plain32, plainLow)}, {{"transpose_rhs", 1}, {"bias", 1}})
                    .isOk());
    ASSERT_TRUE(run("relu", {out(plain32, plainLow)}, {out(relu32, reluLow)}).isOk());
    for (int64_t i = 0; i < m * n; ++i) {
      float fused = f32 ? fused32.data[i] : fusedLow.value(i);
      float unfused = f32 ? relu32.data[i] : reluLow.value(i);
      if (i / n == 1) {
        ASSERT_TRUE(std::isnan(fused)) << dtypeName(type) << " element " << i << ": " << fused;
      }
      if (std::isnan(unfused)) {
        ASSERT_TRUE(std::isnan(fused)) << dtypeName(type) << " element " << i;
      } else {
        ASSERT_EQ(fused, unfused) << dtypeName(type) << " element " << i;
      }
    }
  }
}

TEST_F(CpuKernels, MatmulEpilogueChecksItsBias) {
  Tensor a({2, 3}, 1), b({3, 4}, 2), c({2, 4}), wrongBias({3}, 3);
  Status status = run("matmul", {a.ref(), b.ref(), wrongBias.ref()}, {c.ref()}, {{"bias", 1}});
  EXPECT_NE(status.message().find("bias must be a float vector"), std::string::npos)
      << status.message();
  status = run("matmul", {a.ref(), b.ref()}, {c.ref()}, {{"bias", 1}});
  EXPECT_NE(status.message().find("disagree"), std::string::npos) << status.message();
}

proto::Kernel fusedKernel(std::vector<std::tuple<std::string, std::vector<int>, proto::DType>> steps,
                          std::vector<int> outputRegisters) {
  proto::Kernel kernel;
  kernel.set_op("fused_elementwise");
  kernel.set_node("chain");
  for (auto &[op, args, dtype] : steps) {
    auto *step = kernel.add_steps();
    step->set_op(op);
    for (int a : args)
      step->add_args(a);
    step->set_dtype(dtype);
  }
  for (int r : outputRegisters)
    kernel.add_output_registers(r);
  return kernel;
}

/// A fused chain writes bit for bit what its ops write one kernel at a time
/// (each step rounds to its type), broadcasting included.
TEST_F(CpuKernels, FusedChainEqualsUnfusedKernelsBitForBit) {
  Tensor x32({4, 6}, 21), bias32({6}, 22), gate32({4, 1}, 23);
  LowTensor x(x32, DType::BF16), bias(bias32, DType::BF16);
  // Unfused: a = x + bias (bf16); r = relu(a) (bf16); w = cast(r) f32; e = exp(w) * gate.
  LowTensor a(std::vector<int64_t>{4, 6}, DType::BF16), r(std::vector<int64_t>{4, 6}, DType::BF16);
  Tensor w({4, 6}), e({4, 6}), eExp({4, 6});
  ASSERT_TRUE(run("add", {x.ref(), bias.ref()}, {a.ref()}).isOk());
  ASSERT_TRUE(run("relu", {a.ref()}, {r.ref()}).isOk());
  ASSERT_TRUE(run("cast", {r.ref()}, {w.ref()}).isOk());
  ASSERT_TRUE(run("exp", {w.ref()}, {eExp.ref()}).isOk());
  ASSERT_TRUE(run("mul", {eExp.ref(), gate32.ref()}, {e.ref()}).isOk());

  // Registers: 0 x, 1 bias, 2 gate; 3 a, 4 r, 5 w, 6 exp, 7 e.
  proto::Kernel kernel = fusedKernel({{"add", {0, 1}, proto::BF16},
                                      {"relu", {3}, proto::BF16},
                                      {"cast", {4}, proto::F32},
                                      {"exp", {5}, proto::F32},
                                      {"mul", {6, 2}, proto::F32}},
                                     {4, 7});
  LowTensor rFused(std::vector<int64_t>{4, 6}, DType::BF16);
  Tensor eFused({4, 6});
  std::unique_ptr<CpuKernel> built;
  Status status = buildCpuKernel(kernel, {x.ref(), bias.ref(), gate32.ref()},
                                 {rFused.ref(), eFused.ref()}, context, &built);
  ASSERT_TRUE(status.isOk()) << status.message();
  ASSERT_TRUE(built->run().isOk());
  EXPECT_EQ(rFused.bits, r.bits);
  for (size_t i = 0; i < e.data.size(); ++i)
    EXPECT_EQ(eFused.data[i], e.data[i]) << i;
}

// Broadcast inputs are loaded a run along the innermost dim at a time, the
// index carried between runs and across blocks: every kind of stride (0, 1
// and other), runs that end inside a row, and more elements than one block.
TEST_F(CpuKernels, FusedChainReadsBroadcastInputsAcrossRowsAndBlocks) {
  Tensor x({3, 5, 701}, 31), row({701}, 32), column({5, 1}, 33), plane({3, 1, 701}, 34),
      scalar({1}, 35), result({3, 5, 701});
  // Registers: 0 x, 1 row, 2 column, 3 plane, 4 scalar; 5 .. 8 the steps.
  proto::Kernel kernel = fusedKernel({{"add", {0, 1}, proto::F32},
                                      {"mul", {5, 2}, proto::F32},
                                      {"sub", {6, 3}, proto::F32},
                                      {"add", {7, 4}, proto::F32}},
                                     {8});
  std::unique_ptr<CpuKernel> built;
  Status status = buildCpuKernel(
      kernel, {x.ref(), row.ref(), column.ref(), plane.ref(), scalar.ref()}, {result.ref()},
      context, &built);
  ASSERT_TRUE(status.isOk()) << status.message();
  ASSERT_TRUE(built->run().isOk());
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t k = 0; k < 701; ++k) {
        int64_t at = (i * 5 + j) * 701 + k;
        float expected = (x.data[at] + row.data[k]) * column.data[j];
        expected = expected - plane.data[i * 701 + k] + scalar.data[0];
        ASSERT_EQ(result.data[at], expected) << i << " " << j << " " << k;
      }
}

// An f32 step that is an output is computed straight into the output and
// later steps read it there; an f32 input is read where it lies. When an
// output is also an input's bytes (a state tensor updated in place), a step
// must not write it before later steps have read the input: here
// y = x * c (in place) and z = x + y.
TEST_F(CpuKernels, FusedChainWritesInPlaceOutputsAfterEveryRead) {
  Tensor x({3, 700}, 41), c({700}, 42), z({3, 700});
  std::vector<float> original = x.data;
  // Registers: 0 x, 1 c; 2 y = x * c, 3 z = x + y.
  proto::Kernel kernel =
      fusedKernel({{"mul", {0, 1}, proto::F32}, {"add", {0, 2}, proto::F32}}, {2, 3});
  std::unique_ptr<CpuKernel> built;
  Status status =
      buildCpuKernel(kernel, {x.ref(), c.ref()}, {x.ref(), z.ref()}, context, &built);
  ASSERT_TRUE(status.isOk()) << status.message();
  ASSERT_TRUE(built->run().isOk());
  for (int64_t i = 0; i < 3 * 700; ++i) {
    float y = original[i] * c.data[i % 700];
    ASSERT_EQ(x.data[i], y) << i;
    ASSERT_EQ(z.data[i], original[i] + y) << i;
  }
}

// An elementwise kernel on contiguous bf16 operands runs as one loop that
// widens, computes and rounds in registers: for every op, bit for bit what
// the shared per-element evaluator (fused::evaluate, the CUDA kernels' code)
// gives, infinities, subnormals and a tail past the vector width included,
// with and without a parameter; NaN where it gives NaN.
TEST_F(CpuKernels, Bf16ElementwiseKernelsEqualTheScalarEvaluator) {
  const int64_t n = 1000;
  std::vector<float> special = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, NAN,
                                1e-39f, -3e-40f, 3.0e38f, 0.5f, 2.0f};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-4.0f, 4.0f);
  LowTensor x(std::vector<int64_t>{n}, DType::BF16), y(std::vector<int64_t>{n}, DType::BF16);
  for (int64_t i = 0; i < n; ++i) {
    x.bits[i] = math::floatToBf16(i < 12 ? special[i] : uniform(rng));
    y.bits[i] = math::floatToBf16(i % 13 < 12 ? special[(i * 5) % 12] : uniform(rng));
  }
  struct OpInfo {
    const char *name;
    int arity;
    const char *attribute;
  };
  std::vector<OpInfo> ops = {
#define AMPRT_ELEMENTWISE(Id, name, arity, attribute, math) {name, arity, attribute},
#include "amprt/ElementwiseKernels.def"
  };
  for (const OpInfo &op : ops)
    for (double param : {0.0, 0.75}) {
      if (param != 0.0 && !*op.attribute)
        continue;
      LowTensor r(std::vector<int64_t>{n}, DType::BF16);
      std::vector<TensorRef> in = {x.ref()};
      if (op.arity == 2)
        in.push_back(y.ref());
      std::map<std::string, double> attrs;
      if (*op.attribute)
        attrs[op.attribute] = param;
      Status status = run(op.name, in, {r.ref()}, attrs);
      ASSERT_TRUE(status.isOk()) << op.name << ": " << status.message();
      proto::Kernel single;
      single.set_op(op.name);
      for (auto &[key, value] : attrs)
        (*single.mutable_attrs())[key] = value;
      proto::Kernel chain;
      ASSERT_TRUE(fused::singleStepChain(single, in, {r.ref()}, &chain).isOk());
      fused::Program program;
      ASSERT_TRUE(fused::describe(chain, in, {r.ref()}, &program).isOk());
      std::vector<const void *> inputs;
      for (const TensorRef &t : in)
        inputs.push_back(t.data);
      std::vector<uint16_t> expected(n);
      void *outputs[] = {expected.data()};
      auto isNan = [](uint16_t bits) { return (bits & 0x7fffu) > 0x7f80u; };
      for (int64_t i = 0; i < n; ++i) {
        fused::evaluate(program, inputs.data(), outputs, i);
        // A NaN's sign and payload after arithmetic are the compiler's and
        // the CPU's choice (IEEE 754 leaves them open): a NaN must stay NaN.
        if (isNan(expected[i]))
          ASSERT_TRUE(isNan(r.bits[i])) << op.name << " param " << param << " element " << i;
        else
          ASSERT_EQ(r.bits[i], expected[i]) << op.name << " param " << param << " element " << i;
      }
    }
}

// gradient_stats: the non-finite flag and the global norm of all its
// tensors (f32, bf16, f16; larger than one piece of the split across
// threads), the norm in double; the same bits on one thread and two, and a
// single inf in a later piece found.
TEST_F(CpuKernels, GradientStatsCoverEveryTensorOnAnyThreadCount) {
  Tensor a({70001}, 51), b32({1000}, 52), c32({40000}, 53);
  LowTensor b(b32, DType::BF16), c(c32, DType::F16);
  double expected = 0;
  for (float v : a.data)
    expected += static_cast<double>(v) * v;
  for (size_t i = 0; i < b.bits.size(); ++i)
    expected += static_cast<double>(b.value(i)) * b.value(i);
  for (size_t i = 0; i < c.bits.size(); ++i)
    expected += static_cast<double>(c.value(i)) * c.value(i);
  Tensor found({}), norm({}), foundTwo({}), normTwo({});
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  ASSERT_TRUE(run("gradient_stats", {a.ref(), b.ref(), c.ref()}, {found.ref(), norm.ref()}).isOk());
  omp_set_num_threads(2);
  ASSERT_TRUE(
      run("gradient_stats", {a.ref(), b.ref(), c.ref()}, {foundTwo.ref(), normTwo.ref()}).isOk());
  EXPECT_EQ(found.data[0], 0.0f);
  EXPECT_EQ(math::floatBits(norm.data[0]), math::floatBits(normTwo.data[0]));
  EXPECT_NEAR(norm.data[0], std::sqrt(expected), 1e-6 * std::sqrt(expected));
  a.data[65537] = INFINITY; // in the third piece of the first tensor
  ASSERT_TRUE(run("gradient_stats", {a.ref(), b.ref(), c.ref()}, {found.ref(), norm.ref()}).isOk());
  omp_set_num_threads(threads);
  EXPECT_EQ(found.data[0], 1.0f);
}

// Every permutation of a rank-4 tensor with odd sizes (tiles that do not
// divide them), f32 and bf16, element for element against the definition
// y[i0, i1, i2, i3] = x[i at perm]: row gathers and the tiled path (the
// result's last dim x's dim 0, whose stride is over 4 KiB) alike.
TEST_F(CpuKernels, TransposesOfEveryPermutationMoveEachElement) {
  std::vector<int64_t> shape = {3, 5, 7, 66}; // y rows along x dim 0: strided by pages
  Tensor x(shape, 61);
  LowTensor low(x, DType::BF16);
  std::vector<int64_t> perm = {0, 1, 2, 3};
  do {
    std::vector<int64_t> yShape;
    for (int64_t d : perm)
      yShape.push_back(shape[d]);
    std::map<std::string, double> attrs;
    for (size_t d = 0; d < 4; ++d)
      attrs["permutation." + std::to_string(d)] = static_cast<double>(perm[d]);
    Tensor y(yShape);
    LowTensor yLow(yShape, DType::BF16);
    ASSERT_TRUE(run("transpose", {x.ref()}, {y.ref()}, attrs).isOk());
    ASSERT_TRUE(run("transpose", {low.ref()}, {yLow.ref()}, attrs).isOk());
    int64_t at = 0;
    for (int64_t a = 0; a < yShape[0]; ++a)
      for (int64_t b = 0; b < yShape[1]; ++b)
        for (int64_t c = 0; c < yShape[2]; ++c)
          for (int64_t d = 0; d < yShape[3]; ++d, ++at) {
            int64_t index[4], yIndex[4] = {a, b, c, d};
            for (int k = 0; k < 4; ++k)
              index[perm[k]] = yIndex[k];
            int64_t source = ((index[0] * shape[1] + index[1]) * shape[2] + index[2]) * shape[3] +
                             index[3];
            ASSERT_EQ(y.data[at], x.data[source]) << perm[0] << perm[1] << perm[2] << perm[3];
            ASSERT_EQ(yLow.bits[at], low.bits[source]);
          }
  } while (std::next_permutation(perm.begin(), perm.end()));
}

TEST_F(CpuKernels, FusedChainRejectsMalformedPrograms) {
  Tensor x({4, 6}, 1), y({4, 6}), wrong({5}, 2);
  struct Case {
    proto::Kernel kernel;
    std::vector<TensorRef> in;
    const char *message;
  };
  std::vector<Case> cases = {
      {fusedKernel({{"softmax", {0}, proto::F32}}, {1}), {x.ref()}, "not a fusable"},
      {fusedKernel({{"add", {0}, proto::F32}}, {1}), {x.ref()}, "takes 2 operands"},
      {fusedKernel({{"neg", {3}, proto::F32}}, {1}), {x.ref()}, "not yet defined"},
      {fusedKernel({{"neg", {0}, proto::F32}}, {9}), {x.ref()}, "does not exist"},
      {fusedKernel({{"neg", {0}, proto::F32}}, {1}), {wrong.ref()}, "does not broadcast"},
      {fusedKernel({{"neg", {0}, proto::I64}}, {1}), {x.ref()}, "expects float tensors"},
      {fusedKernel({}, {0}), {x.ref()}, "steps"},
  };
  for (auto &c : cases) {
    std::unique_ptr<CpuKernel> built;
    Status status = buildCpuKernel(c.kernel, c.in, {y.ref()}, context, &built);
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status.message();
  }
}

} // namespace

/// The filter gradient of a 3x3 convolution (pad 1) against FP64 for each
/// operand type: on small maps it runs as a GEMM over gathered windows, on
/// a 2x2 map (every tap live) and a 1x1 map (only the centre tap: the
/// others must come out as exact zeros); a 1x5 map at stride 1 (5 output
/// positions) takes oneDNN's kernel with the dead top and bottom taps cut
/// and zeroed. Strides 1 and 2.
/// Also with low-precision kernels native and widened (CpuGemms): maps of
/// up to 4 output positions take the GEMM path, the 1x5 map at stride 1
/// oneDNN's convolution.
TEST(CpuConvolution, FilterGradientsWithDeadTapsMatchDoubleReference) {
  const int64_t batch = 3, channels = 5, filters = 4;
  for (auto [height, width] : {std::pair<int64_t, int64_t>{1, 1}, {2, 2}, {1, 5}})
    for (int64_t stride : {1, 2})
      for (auto [type, policy] : {std::pair{DType::F32, CpuGemms::Native},
                                  {DType::BF16, CpuGemms::Native},
                                  {DType::BF16, CpuGemms::Widened},
                                  {DType::F16, CpuGemms::Native},
                                  {DType::F16, CpuGemms::Widened}}) {
        int64_t outH = (height + 2 - 3) / stride + 1, outW = (width + 2 - 3) / stride + 1;
        Tensor x32({batch, channels, height, width}, 11), dy32({batch, filters, outH, outW}, 12);
        LowTensor xLow(x32, type == DType::F32 ? DType::BF16 : type),
            dyLow(dy32, type == DType::F32 ? DType::BF16 : type);
        bool f32 = type == DType::F32; // a lambda may not capture a structured binding
        auto value = [&](const Tensor &t32, const LowTensor &low, int64_t i) {
          return f32 ? double(t32.data[i]) : double(low.value(i));
        };
        Tensor dw({filters, channels, 3, 3}, 13); // garbage that must be overwritten
        proto::Kernel kernel = test::paddedConv3x3("conv_backward_filter", stride);
        CpuContext context;
        context.gemms = policy;
        std::unique_ptr<CpuKernel> built;
        TensorRef xRef = type == DType::F32 ? x32.ref() : xLow.ref();
        TensorRef dyRef = type == DType::F32 ? dy32.ref() : dyLow.ref();
        ASSERT_TRUE(buildCpuKernel(kernel, {xRef, dyRef}, {dw.ref()}, context, &built).isOk());
        ASSERT_TRUE(built->run().isOk());
        for (int64_t o = 0; o < filters; ++o)
          for (int64_t c = 0; c < channels; ++c)
            for (int64_t kh = 0; kh < 3; ++kh)
              for (int64_t kw = 0; kw < 3; ++kw) {
                double expected = 0;
                for (int64_t n = 0; n < batch; ++n)
                  for (int64_t oh = 0; oh < outH; ++oh)
                    for (int64_t ow = 0; ow < outW; ++ow) {
                      int64_t h = oh * stride - 1 + kh, w = ow * stride - 1 + kw;
                      if (h < 0 || h >= height || w < 0 || w >= width)
                        continue;
                      expected += value(dy32, dyLow, ((n * filters + o) * outH + oh) * outW + ow) *
                                  value(x32, xLow, ((n * channels + c) * height + h) * width + w);
                    }
                float got = dw.data[((o * channels + c) * 3 + kh) * 3 + kw];
                EXPECT_NEAR(got, expected, 1e-5)
                    << dtypeName(type) << " policy " << int(policy) << " map " << height << "x"
                    << width << " stride " << stride
                    << " at "
                    << o << "," << c << "," << kh << "," << kw;
              }
      }
}

/// A 1x1 filter at stride 2 over a 2x2 map (ResNet-18's last downsample at
/// 32x32 inputs): one output position and every tap live, so on f32 the
/// small-map GEMMs read the weights and write the filter gradient in place.
/// Forward, backward-data and filter gradient against FP64.
TEST(CpuConvolution, OnePositionPointwiseConvolutionsMatchDoubleReference) {
  const int64_t batch = 3, channels = 5, filters = 4;
  Tensor x({batch, channels, 2, 2}, 31), w({filters, channels, 1, 1}, 32),
      dy({batch, filters, 1, 1}, 33);
  Tensor y({batch, filters, 1, 1}, 34), dx({batch, channels, 2, 2}, 35),
      dw({filters, channels, 1, 1}, 36); // garbage that must be overwritten
  const std::map<std::string, double> attrs = {
      {"strides.0", 2}, {"strides.1", 2}, {"pads.0", 0}, {"pads.1", 0}, {"pads.2", 0},
      {"pads.3", 0}, {"dilations.0", 1}, {"dilations.1", 1}, {"group", 1}};
  CpuContext context;
  for (auto [op, in, out] :
       {std::tuple{"conv", std::vector<TensorRef>{x.ref(), w.ref()}, y.ref()},
        {"conv_backward_data", {dy.ref(), w.ref()}, dx.ref()},
        {"conv_backward_filter", {x.ref(), dy.ref()}, dw.ref()}}) {
    std::unique_ptr<CpuKernel> built;
    ASSERT_TRUE(buildCpuKernel(kernelOf(op, attrs), in, {out}, context, &built).isOk()) << op;
    ASSERT_TRUE(built->run().isOk()) << op;
  }
  // The one window reads position (0, 0) of each plane; dx is 0 elsewhere.
  auto xAt = [&](int64_t n, int64_t c) { return double(x.data[(n * channels + c) * 4]); };
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < filters; ++o) {
      double sum = 0;
      for (int64_t c = 0; c < channels; ++c)
        sum += xAt(n, c) * w.data[o * channels + c];
      EXPECT_NEAR(y.data[n * filters + o], sum, 1e-5);
    }
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < 4; ++i) {
        double sum = 0;
        for (int64_t o = 0; o < filters && i == 0; ++o)
          sum += double(dy.data[n * filters + o]) * w.data[o * channels + c];
        EXPECT_NEAR(dx.data[(n * channels + c) * 4 + i], sum, 1e-5) << n << "," << c << "," << i;
      }
  for (int64_t o = 0; o < filters; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      double sum = 0;
      for (int64_t n = 0; n < batch; ++n)
        sum += double(dy.data[n * filters + o]) * xAt(n, c);
      EXPECT_NEAR(dw.data[o * channels + c], sum, 1e-5);
    }
}

/// The forward and backward-data of a 3x3 convolution (pad 1) against FP64.
/// Where its GEMM is f32 (f32 operands, or low ones widened) the forward
/// runs as one GEMM over gathered windows on maps of up to 4 output
/// positions, the backward-data on maps of one (1x1, and 2x2 at stride 2),
/// else through oneDNN. Maps 1x1 (only the centre tap live), 2x2, 1x5 and
/// 4x4, strides 1 and 2 (the forward of 4x4 and 1x5 at stride 2 takes the
/// GEMM, at stride 1 oneDNN). Outputs
/// start as garbage: every element must be written, inputs no window reads
/// with 0.
TEST(CpuConvolution, SmallMapForwardAndBackwardDataMatchDoubleReference) {
  const int64_t batch = 3, channels = 5, filters = 4;
  for (auto [height, width] :
       {std::pair<int64_t, int64_t>{1, 1}, {2, 2}, {1, 5}, {4, 4}})
    for (int64_t stride : {1, 2})
      for (bool forward : {true, false})
        for (auto [type, policy] : {std::pair{DType::F32, CpuGemms::Native},
                                    {DType::BF16, CpuGemms::Widened},
                                    {DType::F16, CpuGemms::Native}}) {
          test::Conv3x3Shape shape{batch, channels, filters, height, width, stride};
          std::vector<int64_t> xShape = {batch, channels, height, width},
                               yShape = {batch, filters, shape.outH(), shape.outW()};
          Tensor operand32(forward ? xShape : yShape, 21), w32({filters, channels, 3, 3}, 22);
          DType low = type == DType::F32 ? DType::BF16 : type;
          LowTensor operandLow(operand32, low), wLow(w32, low);
          bool f32 = type == DType::F32; // a lambda may not capture a structured binding
          auto value = [&](const Tensor &t32, const LowTensor &t, int64_t i) {
            return f32 ? double(t32.data[i]) : double(t.value(i));
          };
          const std::vector<int64_t> &outShape = forward ? yShape : xShape;
          Tensor out32(outShape, 23);                  // garbage that must be overwritten
          LowTensor outLow(Tensor(outShape, 23), low); // the same for low types
          std::vector<double> expected = test::referenceConv3x3(
              shape, forward, [&](int64_t i) { return value(operand32, operandLow, i); },
              [&](int64_t i) { return value(w32, wLow, i); });
          proto::Kernel kernel =
              test::paddedConv3x3(forward ? "conv" : "conv_backward_data", stride);
          CpuContext context;
          context.gemms = policy;
          std::unique_ptr<CpuKernel> built;
          TensorRef operand = f32 ? operand32.ref() : operandLow.ref();
          TensorRef weights = f32 ? w32.ref() : wLow.ref();
          TensorRef result = f32 ? out32.ref() : outLow.ref();
          ASSERT_TRUE(buildCpuKernel(kernel, {operand, weights}, {result}, context, &built).isOk());
          ASSERT_TRUE(built->run().isOk());
          double rounding = f32 ? 0 : type == DType::BF16 ? 0x1p-8 : 0x1p-11;
          for (size_t i = 0; i < expected.size(); ++i) {
            double got = f32 ? out32.data[i] : outLow.value(i);
            EXPECT_NEAR(got, expected[i], 1e-5 + std::abs(expected[i]) * rounding)
                << (forward ? "forward " : "backward-data ") << dtypeName(type) << " map "
                << height << "x" << width << " stride " << stride << " at " << i;
          }
        }
}

/// Batch normalization over [N, C, S] against FP64 from the same rounded
/// inputs, in f32/bf16/f16: training forward (batch statistics, running
/// averages) and backward; outputs rounded once to the storage type. S = 37:
/// rows that are not a multiple of the kernel's 16 lanes; 16: exactly one;
/// 4 and 1: shorter (ResNet-18's last maps). 19 channels: a full block of
/// 16 channels and a partial one.
TEST(CpuBatchNorm, TrainingForwardAndBackwardMatchDoubleReference) {
  const int64_t batch = 5, channels = 19;
  const float epsilon = 1e-5f, momentum = 0.9f;
  for (int64_t spatial : {37, 16, 4, 1})
    for (DType type : {DType::F32, DType::BF16, DType::F16}) {
      std::vector<int64_t> shape = {batch, channels, spatial};
      Tensor x32(shape, 21), dy32(shape, 22), y32(shape), dx32(shape);
      for (float &v : x32.data)
        v = 3.0f + 2.0f * v; // a mean far from 0: the variance must not cancel
      DType low = type == DType::F32 ? DType::BF16 : type;
      LowTensor x(x32, low), dy(dy32, low), y(shape, low), dx(shape, low);
      auto value = [&](const Tensor &t32, const LowTensor &t, int64_t i) {
        return type == DType::F32 ? double(t32.data[i]) : double(t.value(i));
      };
      Tensor scale({channels}, 23), shift({channels}, 24), runMean({channels}, 25),
          runVar({channels}), newMean({channels}), newVar({channels}), mean({channels}),
          var({channels}), dscale({channels}), dshift({channels});
      for (float &v : runVar.data)
        v = 1.5f;
      CpuContext context;
      std::unique_ptr<CpuKernel> forward, backward;
      TensorRef xr = type == DType::F32 ? x32.ref() : x.ref();
      TensorRef yr = type == DType::F32 ? y32.ref() : y.ref();
      TensorRef dyr = type == DType::F32 ? dy32.ref() : dy.ref();
      TensorRef dxr = type == DType::F32 ? dx32.ref() : dx.ref();
      ASSERT_TRUE(buildCpuKernel(kernelOf("batch_norm", {{"epsilon", epsilon}, {"momentum", momentum}}),
                                 {xr, scale.ref(), shift.ref(), runMean.ref(), runVar.ref()},
                                 {yr, newMean.ref(), newVar.ref(), mean.ref(), var.ref()},
                                 context, &forward).isOk());
      ASSERT_TRUE(forward->run().isOk());
      ASSERT_TRUE(buildCpuKernel(kernelOf("batch_norm_grad", {{"epsilon", epsilon},
                                                               {"use_global_stats", 0}}),
                                 {dyr, xr, scale.ref(), mean.ref(), var.ref()},
                                 {dxr, dscale.ref(), dshift.ref()}, context, &backward).isOk());
      ASSERT_TRUE(backward->run().isOk());
      double rounding = type == DType::F32 ? 0 : type == DType::BF16 ? 0x1p-8 : 0x1p-11;
      int64_t m = batch * spatial;
      for (int64_t c = 0; c < channels; ++c) {
        auto at = [&](int64_t n, int64_t s) { return (n * channels + c) * spatial + s; };
        double mu = 0, v = 0, sdy = 0, sdyxc = 0;
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t s = 0; s < spatial; ++s)
            mu += value(x32, x, at(n, s)) / m;
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t s = 0; s < spatial; ++s) {
            double xc = value(x32, x, at(n, s)) - mu, g = value(dy32, dy, at(n, s));
            v += xc * xc / m;
            sdy += g;
            sdyxc += g * xc;
          }
        double inv = 1 / std::sqrt(v + epsilon);
        EXPECT_NEAR(mean.data[c], mu, 1e-6) << dtypeName(type);
        EXPECT_NEAR(var.data[c], v, 1e-5 * v) << dtypeName(type);
        EXPECT_NEAR(newMean.data[c], runMean.data[c] * momentum + mu * (1 - momentum), 1e-6);
        EXPECT_NEAR(dshift.data[c], sdy, 1e-5 * m);
        EXPECT_NEAR(dscale.data[c], sdyxc * inv, 1e-5 * m);
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t s = 0; s < spatial; ++s) {
            double xc = value(x32, x, at(n, s)) - mu;
            double yRef = xc * inv * scale.data[c] + shift.data[c];
            double dxRef = scale.data[c] * inv *
                           (value(dy32, dy, at(n, s)) - sdy / m - xc * inv * inv * sdyxc / m);
            double yGot = type == DType::F32 ? y32.data[at(n, s)] : y.value(at(n, s));
            double dxGot = type == DType::F32 ? dx32.data[at(n, s)] : dx.value(at(n, s));
            EXPECT_NEAR(yGot, yRef, 1e-5 + std::abs(yRef) * rounding) << dtypeName(type);
            EXPECT_NEAR(dxGot, dxRef, 1e-5 + std::abs(dxRef) * rounding) << dtypeName(type);
          }
      }
    }
}

/// Batch normalization with given statistics (evaluation mode) against
/// FP64, in f32/bf16/f16, over [N, C, S] as above: batch_norm_inference,
/// and batch_norm_grad with use_global_stats (dx = scale / std * dy; the
/// scale and shift gradients as in training).
TEST(CpuBatchNorm, GivenStatisticsForwardAndBackwardMatchDoubleReference) {
  const int64_t batch = 5, channels = 19;
  const float epsilon = 1e-5f;
  for (int64_t spatial : {37, 4, 1})
    for (DType type : {DType::F32, DType::BF16, DType::F16}) {
      std::vector<int64_t> shape = {batch, channels, spatial};
      Tensor x32(shape, 41), dy32(shape, 42), y32(shape, 43), dx32(shape, 44);
      DType low = type == DType::F32 ? DType::BF16 : type;
      LowTensor x(x32, low), dy(dy32, low), y(Tensor(shape, 43), low), dx(Tensor(shape, 44), low);
      bool f32 = type == DType::F32;
      auto value = [&](const Tensor &t32, const LowTensor &t, int64_t i) {
        return f32 ? double(t32.data[i]) : double(t.value(i));
      };
      Tensor scale({channels}, 45), shift({channels}, 46), mean({channels}, 47),
          var({channels}, 48), dscale({channels}, 49), dshift({channels}, 50);
      for (float &v : var.data)
        v = 0.5f + std::abs(v);
      CpuContext context;
      std::unique_ptr<CpuKernel> forward, backward;
      TensorRef xr = f32 ? x32.ref() : x.ref(), yr = f32 ? y32.ref() : y.ref();
      TensorRef dyr = f32 ? dy32.ref() : dy.ref(), dxr = f32 ? dx32.ref() : dx.ref();
      ASSERT_TRUE(buildCpuKernel(kernelOf("batch_norm_inference", {{"epsilon", epsilon}}),
                                 {xr, scale.ref(), shift.ref(), mean.ref(), var.ref()}, {yr},
                                 context, &forward)
                      .isOk());
      ASSERT_TRUE(forward->run().isOk());
      ASSERT_TRUE(buildCpuKernel(kernelOf("batch_norm_grad", {{"epsilon", epsilon},
                                                               {"use_global_stats", 1}}),
                                 {dyr, xr, scale.ref(), mean.ref(), var.ref()},
                                 {dxr, dscale.ref(), dshift.ref()}, context, &backward)
                      .isOk());
      ASSERT_TRUE(backward->run().isOk());
      double rounding = f32 ? 0 : type == DType::BF16 ? 0x1p-8 : 0x1p-11;
      int64_t m = batch * spatial;
      for (int64_t c = 0; c < channels; ++c) {
        auto at = [&](int64_t n, int64_t s) { return (n * channels + c) * spatial + s; };
        double inv = 1 / std::sqrt(double(var.data[c]) + epsilon), sdy = 0, sdyxc = 0;
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t s = 0; s < spatial; ++s) {
            double xc = value(x32, x, at(n, s)) - mean.data[c], g = value(dy32, dy, at(n, s));
            sdy += g;
            sdyxc += g * xc;
            double yRef = xc * inv * scale.data[c] + shift.data[c];
            double dxRef = scale.data[c] * inv * g;
            double yGot = f32 ? y32.data[at(n, s)] : y.value(at(n, s));
            double dxGot = f32 ? dx32.data[at(n, s)] : dx.value(at(n, s));
            EXPECT_NEAR(yGot, yRef, 1e-5 + std::abs(yRef) * rounding) << dtypeName(type);
            EXPECT_NEAR(dxGot, dxRef, 1e-5 + std::abs(dxRef) * rounding) << dtypeName(type);
          }
        EXPECT_NEAR(dshift.data[c], sdy, 1e-5 * m) << dtypeName(type);
        EXPECT_NEAR(dscale.data[c], sdyxc * inv, 1e-5 * m) << dtypeName(type);
      }
    }
}

/// A pooling kernel's attributes, per spatial dim: kernel, strides, pads
/// (begins, then ends) and dilations.
std::map<std::string, double> poolAttrs(const std::vector<int64_t> &kernel,
                                        const std::vector<int64_t> &strides,
                                        const std::vector<int64_t> &padBegin,
                                        const std::vector<int64_t> &padEnd,
                                        const std::vector<int64_t> &dilations) {
  std::map<std::string, double> attrs;
  size_t rank = kernel.size();
  for (size_t d = 0; d < rank; ++d) {
    attrs["kernel." + std::to_string(d)] = double(kernel[d]);
    attrs["strides." + std::to_string(d)] = double(strides[d]);
    attrs["pads." + std::to_string(d)] = double(padBegin[d]);
    attrs["pads." + std::to_string(d + rank)] = double(padEnd[d]);
    attrs["dilations." + std::to_string(d)] = double(dilations[d]);
  }
  return attrs;
}

/// max_pool against its definition, on data with ties, NaN and -inf, with
/// padding, strides, dilations and a window entirely in padding (ceil_mode
/// shapes): the largest value (NaN wins, as in PyTorch), the first in the
/// window's row-major order among equals, its flat index in the plane; 0
/// and index -1 for an empty window. 2-D windows take the separable fast
/// path (row maxima, then maxima of rows), 1-D and 3-D the general one.
TEST_F(CpuKernels, MaxPoolMatchesItsDefinitionWithTiesNaNAndEmptyWindows) {
  struct Case {
    std::vector<int64_t> in, kernel, strides, padBegin, padEnd, dilations;
  };
  std::vector<Case> cases = {
      {{7, 9}, {3, 2}, {2, 1}, {1, 0}, {2, 1}, {1, 2}},
      {{3, 3}, {2, 2}, {2, 2}, {0, 0}, {3, 3}, {1, 1}}, // last windows all padding
      {{16, 16}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}}, // ResNet-18's
      {{5, 40}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},   // rows longer than a vector
      {{6, 45}, {2, 3}, {1, 2}, {0, 2}, {1, 2}, {2, 2}},   // strided, dilated, padded
      {{11}, {3}, {2}, {1}, {2}, {2}},
      {{4, 5, 3}, {2, 3, 2}, {1, 2, 1}, {1, 1, 0}, {0, 1, 1}, {1, 1, 2}},
  };
  std::mt19937 rng(5);
  for (const Case &c : cases) {
    size_t rank = c.in.size();
    std::vector<int64_t> out(rank);
    for (size_t d = 0; d < rank; ++d)
      out[d] = (c.in[d] + c.padBegin[d] + c.padEnd[d] - c.dilations[d] * (c.kernel[d] - 1) - 1) /
                   c.strides[d] + 1;
    std::vector<int64_t> xShape = {2, 3}, yShape = {2, 3};
    xShape.insert(xShape.end(), c.in.begin(), c.in.end());
    yShape.insert(yShape.end(), out.begin(), out.end());
    Tensor x(xShape), y(yShape);
    for (float &v : x.data) { // few levels (ties), some NaN and -inf
      int level = static_cast<int>(rng() % 8);
      v = level == 0 ? NAN : level == 1 ? -INFINITY : static_cast<float>(level % 4);
    }
    std::vector<int64_t> indices(y.data.size());
    auto attrs = poolAttrs(c.kernel, c.strides, c.padBegin, c.padEnd, c.dilations);
    TensorRef indexRef{indices.data(), DType::I64, yShape};
    ASSERT_TRUE(run("max_pool", {x.ref()}, {y.ref(), indexRef}, attrs).isOk());
    int64_t inPlane = 1, outPlane = 1, windowSize = 1;
    for (size_t d = 0; d < rank; ++d)
      inPlane *= c.in[d], outPlane *= out[d], windowSize *= c.kernel[d];
    int64_t empty = 0;
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t o = 0; o < outPlane; ++o) {
        float best = 0;
        int64_t bestIndex = -1;
        for (int64_t k = 0; k < windowSize; ++k) { // taps in row-major order
          int64_t offset = 0, oRest = o, kRest = k, scale = 1;
          bool inside = true;
          for (size_t d = rank; d-- > 0;) {
            int64_t pos = (oRest % out[d]) * c.strides[d] - c.padBegin[d] +
                          (kRest % c.kernel[d]) * c.dilations[d];
            oRest /= out[d], kRest /= c.kernel[d];
            inside = inside && pos >= 0 && pos < c.in[d];
            offset += pos * scale;
            scale *= c.in[d];
          }
          if (!inside)
            continue;
          float v = x.data[p * inPlane + offset];
          if (bestIndex < 0 || v > best || (std::isnan(v) && !std::isnan(best)))
            best = v, bestIndex = offset;
        }
        empty += bestIndex < 0;
        float got = y.data[p * outPlane + o];
        ASSERT_EQ(indices[p * outPlane + o], bestIndex) << "plane " << p << " output " << o;
        if (std::isnan(best)) {
          ASSERT_TRUE(std::isnan(got));
        } else {
          ASSERT_EQ(got, bestIndex < 0 ? 0.0f : best);
        }
      }
    if (c.in == std::vector<int64_t>{3, 3}) {
      EXPECT_GT(empty, 0); // the case meant to have windows all in padding does
    }
    // bf16 (the cloned 2-D path) and f16 planes of the same values, exact in
    // both: the same indices and values.
    for (DType low : {DType::BF16, DType::F16}) {
      LowTensor xLow(x, low), yLow(yShape, low);
      std::vector<int64_t> lowIndices(indices.size(), 7);
      TensorRef lowIndexRef{lowIndices.data(), DType::I64, yShape};
      ASSERT_TRUE(run("max_pool", {xLow.ref()}, {yLow.ref(), lowIndexRef}, attrs).isOk());
      ASSERT_EQ(lowIndices, indices) << dtypeName(low);
      for (size_t i = 0; i < indices.size(); ++i)
        if (std::isnan(y.data[i]))
          ASSERT_TRUE(std::isnan(yLow.value(i))) << dtypeName(low) << " at " << i;
        else
          ASSERT_EQ(yLow.value(i), y.data[i]) << dtypeName(low) << " at " << i;
    }
  }
}

/// A pooling window geometry for the huge-window tests: per spatial dim.
struct PoolCase {
  std::vector<int64_t> in, out, kernel, strides, padBegin, padEnd, dilations;
  /// Whether input position p along dim d is a tap of result position o:
  /// decided from the position, never by walking the window's taps.
  bool covers(size_t d, int64_t o, int64_t p) const {
    int64_t fromStart = p + padBegin[d] - o * strides[d];
    return fromStart >= 0 && fromStart % dilations[d] == 0 &&
           fromStart / dilations[d] < kernel[d];
  }
  /// The input positions of result `o`'s window, in row-major order.
  std::vector<int64_t> window(int64_t o) const {
    size_t rank = in.size();
    std::vector<int64_t> at(rank), found;
    for (size_t d = rank; d-- > 0;)
      at[d] = o % out[d], o /= out[d];
    int64_t inPlane = 1;
    for (int64_t v : in)
      inPlane *= v;
    for (int64_t flat = 0; flat < inPlane; ++flat) {
      bool inside = true;
      for (int64_t d = int64_t(rank) - 1, rest = flat; d >= 0; rest /= in[d], --d)
        inside = inside && covers(d, at[d], rest % in[d]);
      if (inside)
        found.push_back(flat);
    }
    return found;
  }
  /// count_include_pad's divisor (dilation 1): the window clipped to the
  /// padded input, dim by dim.
  double paddedCount(int64_t o) const {
    double count = 1;
    for (size_t d = in.size(); d-- > 0; o /= out[d]) {
      int64_t start = (o % out[d]) * strides[d] - padBegin[d];
      count *= double(std::min(start + kernel[d], in[d] + padEnd[d]) -
                      std::max(start, -padBegin[d]));
    }
    return count;
  }
};

/// Windows of 2^40 taps over inputs of a few positions (a fuzzed plan's;
/// hung before only the taps inside were visited) in 1, 2 and 3 dims,
/// rounded down and up (ceil_mode): max pooling, and average pooling with
/// and without count_include_pad forward and backward, against the
/// windows found by testing each input position.
TEST_F(CpuKernels, PoolingsWithHugeWindowsVisitOnlyTheTapsInside) {
  const int64_t huge = int64_t{1} << 40;
  std::vector<PoolCase> cases = {
      // Taps [huge - 3, huge) of result 0 read positions 0-2; room 2.
      {{5}, {3}, {huge}, {1}, {huge - 3}, {0}, {1}},
      {{3, 3}, {3, 2}, {1, huge}, {1, 1}, {0, huge - 2}, {0, 0}, {1, 1}},
      // Rounded up (ceil_mode) along dims 1 and 2; dim 2's last windows lie
      // in the padding.
      {{2, 3, 4}, {2, 3, 3}, {1, huge, 2}, {1, 2, 3}, {0, huge / 2, 0}, {0, huge / 2, 2},
       {1, 1, 1}},
      {{4, 2}, {3, 1}, {huge, 2}, {2, 1}, {huge / 2, 0}, {huge / 2, 0}, {1, 1}},
      {{7}, {3}, {huge}, {4}, {3 * huge / 2}, {3 * huge / 2}, {3}}, // dilated: max only
  };
  for (const PoolCase &c : cases) {
    std::vector<int64_t> xShape = {2, 3}, yShape = {2, 3};
    xShape.insert(xShape.end(), c.in.begin(), c.in.end());
    yShape.insert(yShape.end(), c.out.begin(), c.out.end());
    Tensor x(xShape, 61), y(yShape), dy(yShape, 62), dx(xShape, 63);
    int64_t inPlane = x.data.size() / 6, outPlane = y.data.size() / 6;
    std::vector<int64_t> indices(y.data.size());
    auto attrs = poolAttrs(c.kernel, c.strides, c.padBegin, c.padEnd, c.dilations);
    ASSERT_TRUE(
        run("max_pool", {x.ref()}, {y.ref(), {indices.data(), DType::I64, yShape}}, attrs).isOk());
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t o = 0; o < outPlane; ++o) {
        int64_t best = -1;
        for (int64_t offset : c.window(o))
          if (best < 0 || x.data[p * inPlane + offset] > x.data[p * inPlane + best])
            best = offset;
        ASSERT_EQ(indices[p * outPlane + o], best) << "output " << o;
        EXPECT_EQ(y.data[p * outPlane + o], best < 0 ? 0.0f : x.data[p * inPlane + best]);
      }
    if (std::any_of(c.dilations.begin(), c.dilations.end(), [](int64_t v) { return v != 1; }))
      continue; // average pooling has no dilations
    for (int includePad : {0, 1}) {
      attrs["count_include_pad"] = includePad;
      attrs.erase("dilations.0"), attrs.erase("dilations.1"), attrs.erase("dilations.2");
      ASSERT_TRUE(run("avg_pool", {x.ref()}, {y.ref()}, attrs).isOk());
      ASSERT_TRUE(run("avg_pool_grad", {dy.ref()}, {dx.ref()}, attrs).isOk());
      // f32 sums of a few terms: within 1e-6 of the terms' magnitudes.
      std::vector<double> dxRef(x.data.size(), 0.0), dxScale(x.data.size(), 1e-30);
      for (int64_t p = 0; p < 6; ++p)
        for (int64_t o = 0; o < outPlane; ++o) {
          std::vector<int64_t> window = c.window(o);
          double divisor = includePad ? c.paddedCount(o) : double(window.size()), sum = 0,
                 magnitude = 1e-30;
          for (int64_t offset : window) {
            sum += x.data[p * inPlane + offset];
            magnitude += std::abs(x.data[p * inPlane + offset]) / divisor;
            dxRef[p * inPlane + offset] += dy.data[p * outPlane + o] / divisor;
            dxScale[p * inPlane + offset] += std::abs(dy.data[p * outPlane + o]) / divisor;
          }
          double mean = window.empty() ? 0.0 : sum / divisor; // no input: 0
          EXPECT_NEAR(y.data[p * outPlane + o], mean, 1e-6 * magnitude);
        }
      for (size_t i = 0; i < dxRef.size(); ++i)
        EXPECT_NEAR(dx.data[i], dxRef[i], 1e-6 * dxScale[i]) << i;
    }
  }
}

/// A 2-D max pooling over a tall input into a wide result (a fuzzed plan's:
/// 65536 rows of one column, one window of all of them, and 65535 windows
/// in the column padding): the separable path's scratch, a row maximum per
/// input row and result column, would take 48 GiB per thread (it threw
/// std::bad_alloc inside the parallel region, which ended the process);
/// such shapes take the general path.
TEST_F(CpuKernels, MaxPoolOfATallInputIntoAWideResultStaysSmall) {
  const int64_t rows = 65536;
  Tensor x({1, 1, rows, 1}, 71), y({1, 1, 1, rows});
  std::vector<int64_t> indices(rows);
  std::map<std::string, double> attrs = {
      {"kernel.0", double(rows)}, {"kernel.1", 1}, {"strides.0", 1}, {"strides.1", 1},
      {"pads.0", 0}, {"pads.1", 0}, {"pads.2", 0}, {"pads.3", double(rows - 1)},
      {"dilations.0", 1}, {"dilations.1", 1}};
  ASSERT_TRUE(
      run("max_pool", {x.ref()}, {y.ref(), {indices.data(), DType::I64, {1, 1, 1, rows}}}, attrs)
          .isOk());
  int64_t best = std::max_element(x.data.begin(), x.data.end()) - x.data.begin();
  EXPECT_EQ(indices[0], best);
  EXPECT_EQ(y.data[0], x.data[best]);
  for (int64_t o = 1; o < rows; ++o) // windows in the padding only
    ASSERT_TRUE(indices[o] == -1 && y.data[o] == 0.0f) << o;
}

/// A pooling whose windows overlap so much that it would visit more than
/// 2^36 taps is refused when it is built: 2^19 inputs, each inside all of
/// 2^19 + 1 windows 2^20 wide (2^38 taps, an hour of work).
TEST_F(CpuKernels, PoolingThatWouldVisitTooManyTapsIsRefused) {
  const int64_t in = int64_t{1} << 19;
  Tensor x({1, 1, in}), y({1, 1, in + 1});
  std::unique_ptr<CpuKernel> built;
  Status s = buildCpuKernel(kernelOf("avg_pool", {{"kernel.0", double(2 * in)},
                                                  {"strides.0", 1},
                                                  {"pads.0", double(in)},
                                                  {"pads.1", double(in)}}),
                            {x.ref()}, {y.ref()}, context, &built);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("more than 2^36"), std::string::npos) << s.message();
}

/// Windows that do not fit the padded input, result sizes that do not follow
/// from the window, and geometry whose positions would leave int64 (hostile
/// plans) are refused with an error, for pooling and convolution alike.
TEST_F(CpuKernels, PoolingAndConvolutionRefuseGeometryThatDoesNotFit) {
  const double big = 0x1p62;
  Tensor x({1, 1, 4}), y({1, 1, 2});
  std::vector<int64_t> indices(2);
  TensorRef indexRef{indices.data(), DType::I64, {1, 1, 2}};
  auto pool = [&](std::map<std::string, double> attrs) {
    std::map<std::string, double> base = {
        {"kernel.0", 3}, {"strides.0", 1}, {"pads.0", 0}, {"pads.1", 0}, {"dilations.0", 1}};
    for (auto [name, value] : attrs)
      base[name] = value;
    return run("max_pool", {x.ref()}, {y.ref(), indexRef}, base);
  };
  EXPECT_TRUE(pool({}).isOk()); // 4 - 3 + 1 = 2 results
  EXPECT_FALSE(pool({{"kernel.0", 2}}).isOk());          // 3 results, not 2
  EXPECT_FALSE(pool({{"kernel.0", 5}}).isOk());          // wider than the input
  EXPECT_FALSE(pool({{"dilations.0", big}}).isOk());     // span 2^63: overflows
  EXPECT_FALSE(pool({{"pads.0", big}, {"pads.1", big}}).isOk()); // padded 2^63
  Status s = pool({{"kernel.0", 1}, {"strides.0", big}, {"pads.1", big - 5}});
  ASSERT_FALSE(s.isOk()); // room 2^62 - 2, plus the stride: overflows
  EXPECT_NE(s.message().find("spatial dim 0"), std::string::npos) << s.message();
  EXPECT_TRUE(run("avg_pool", {x.ref()}, {y.ref()},
                  {{"kernel.0", 2}, {"strides.0", 3}, {"pads.0", 0}, {"pads.1", 1}})
                  .isOk()); // room 3: rounded down 2 results
  EXPECT_FALSE(run("avg_pool", {x.ref()}, {y.ref()},
                   {{"kernel.0", 1}, {"strides.0", 1}, {"pads.0", 0}, {"pads.1", 0}})
                   .isOk()); // 4 results, not 2
  Tensor w({1, 1, 3}), convY({1, 1, 2});
  auto conv = [&](double dilation) {
    return run("conv", {x.ref(), w.ref()}, {convY.ref()},
               {{"strides.0", 1}, {"pads.0", 0}, {"pads.1", 0}, {"dilations.0", dilation},
                {"group", 1}});
  };
  EXPECT_TRUE(conv(1).isOk());
  EXPECT_FALSE(conv(big).isOk());
}
