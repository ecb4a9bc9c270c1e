//===- PlanWriter.h - kernels kept encoded while a plan is lowered -*- C++ -*-===//
#ifndef AMP_CONVERSION_PLANWRITER_H
#define AMP_CONVERSION_PLANWRITER_H

#include <string>

namespace amprt::proto {
class Kernel;
}

namespace mlir::amp {

/// Appends `kernel` to `encoded` as one entry of the Program field
/// `kernels`, deterministically (attributes in key order): see
/// PlanPart::kernels.
void appendEncodedKernel(const amprt::proto::Kernel &kernel, std::string &encoded);

} // namespace mlir::amp

#endif // AMP_CONVERSION_PLANWRITER_H
