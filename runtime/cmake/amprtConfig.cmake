# find_package(amprt) support for an installed runtime.
include(CMakeFindDependencyMacro)
find_dependency(Protobuf)
find_library(DNNL_LIBRARY NAMES dnnl REQUIRED)
find_dependency(OpenMP COMPONENTS CXX)
find_dependency(ZLIB)
include("${CMAKE_CURRENT_LIST_DIR}/amprtTargets.cmake")
