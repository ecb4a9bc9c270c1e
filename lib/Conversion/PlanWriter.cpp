//===- PlanWriter.cpp - plan parts to bytes or text, and their summary ----===//
//
// A plan is written part by part as it is lowered (lowerToPlanInParts). A
// program part holds its kernels already encoded, so the binary writer
// splices them into the program's bytes between its buffers and its inputs:
// where protobuf's deterministic serialization of the whole program (fields
// in number order) would put them. The result is byte for byte the plan
// that serializing one whole Plan message gives.
//
//===----------------------------------------------------------------------===//

#include "PlanWriter.h"
#include "amp/Conversion/AmpToPlan.h"

#include "plan.pb.h"
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>
#include <limits>

using namespace mlir;
using namespace mlir::amp;
using google::protobuf::io::CodedOutputStream;

namespace {

/// The tag of a length-delimited field (wire type 2).
constexpr uint32_t lengthDelimitedTag(int field) { return (static_cast<uint32_t>(field) << 3) | 2; }

/// Bytes of a length-delimited field with a one-byte tag and `size` bytes.
size_t fieldBytes(size_t size) {
  return 1 + CodedOutputStream::VarintSize64(size) + size;
}

/// protobuf's output stream onto an LLVM stream.
class RawOstreamOutput : public google::protobuf::io::CopyingOutputStream {
public:
  explicit RawOstreamOutput(llvm::raw_ostream &os) : os(os) {}
  bool Write(const void *buffer, int size) override {
    os.write(static_cast<const char *>(buffer), size);
    return true; // write errors surface when the file is closed
  }

private:
  llvm::raw_ostream &os;
};

/// The part's program and its field number in Plan; null for the header part.
const amprt::proto::Program *programOf(const amprt::proto::Plan &plan, int &field) {
  if (plan.has_train()) {
    field = amprt::proto::Plan::kTrainFieldNumber;
    return &plan.train();
  }
  field = amprt::proto::Plan::kEvalFieldNumber;
  return plan.has_eval() ? &plan.eval() : nullptr;
}

bool writeBinary(const PlanPart &part, google::protobuf::io::ZeroCopyOutputStream &stream) {
  CodedOutputStream coded(&stream);
  // Deterministic: map entries (kernel attributes) in key order, so the
  // same model always gives the same bytes.
  coded.SetSerializationDeterministic(true);
  int field;
  const amprt::proto::Program *program = programOf(part.plan, field);
  if (!program)
    return part.plan.SerializeToCodedStream(&coded);
  std::string fields; // the program less any encoded kernels: no maps, so deterministic as is
  if (!program->SerializeToString(&fields) ||
      fields.size() + part.kernels.size() > std::numeric_limits<int>::max())
    return false; // protobuf's limit: a message over 2 GB does not parse
  size_t head = program->name().empty() ? 0 : fieldBytes(program->name().size());
  for (const amprt::proto::Buffer &buffer : program->buffers())
    head += fieldBytes(buffer.ByteSizeLong());
  if (head > fields.size())
    return false;
  coded.WriteTag(lengthDelimitedTag(field));
  coded.WriteVarint64(fields.size() + part.kernels.size());
  coded.WriteRaw(fields.data(), static_cast<int>(head));
  coded.WriteRaw(part.kernels.data(), static_cast<int>(part.kernels.size()));
  coded.WriteRaw(fields.data() + head, static_cast<int>(fields.size() - head));
  return !coded.HadError();
}

bool writeText(const PlanPart &part, google::protobuf::io::ZeroCopyOutputStream &stream) {
  if (!part.kernels.empty())
    return false; // text plans are lowered with kernels as messages
  return google::protobuf::TextFormat::Print(part.plan, &stream);
}

} // namespace

void mlir::amp::appendEncodedKernel(const amprt::proto::Kernel &kernel, std::string &encoded) {
  size_t size = kernel.ByteSizeLong(); // also caches the sizes written below
  size_t start = encoded.size();
  encoded.resize(start + fieldBytes(size));
  google::protobuf::io::ArrayOutputStream out(encoded.data() + start,
                                              static_cast<int>(encoded.size() - start));
  CodedOutputStream coded(&out);
  coded.SetSerializationDeterministic(true);
  coded.WriteTag(lengthDelimitedTag(amprt::proto::Program::kKernelsFieldNumber));
  coded.WriteVarint64(size);
  kernel.SerializeWithCachedSizes(&coded);
}

LogicalResult mlir::amp::serializePlanPart(const PlanPart &part, bool text, llvm::raw_ostream &os,
                                           int64_t *bytes) {
  RawOstreamOutput raw(os);
  google::protobuf::io::CopyingOutputStreamAdaptor stream(&raw);
  bool written = text ? writeText(part, stream) : writeBinary(part, stream);
  stream.Flush();
  *bytes = stream.ByteCount();
  if (!written) {
    llvm::errs() << "error: cannot serialize the plan\n";
    return failure();
  }
  return success();
}

void PlanStatistics::add(const PlanPart &part) {
  states += part.plan.states_size();
  int field;
  const amprt::proto::Program *program = programOf(part.plan, field);
  if (!program || part.kernelsByOp.empty())
    return;
  Program &summary = programs.emplace_back();
  summary.name = program->name();
  summary.buffers = program->buffers_size();
  summary.arenaBytes = program->arena_bytes();
  summary.kernelsByOp = part.kernelsByOp;
}

void PlanStatistics::print(int64_t bytes, llvm::raw_ostream &os) const {
  os << "plan: " << bytes << " bytes, " << states << " state tensors\n";
  for (const Program &program : programs) {
    int kernels = 0;
    for (const auto &[op, count] : program.kernelsByOp)
      kernels += count;
    os << program.name << ": " << kernels << " kernels, " << program.buffers
       << " buffers, arena " << program.arenaBytes << " bytes\n";
    for (const auto &[op, count] : program.kernelsByOp)
      os << "  " << op << " " << count << "\n";
  }
}
