# Finds every dependency once. HPC sites without Debian packages point CMake at their modules or
# Spack installs with the usual hints: MPI_HOME (or MPI_CXX_COMPILER), HDF5_ROOT, Eigen3_DIR,
# BOOST_ROOT, nlohmann_json_DIR, CUDAToolkit_ROOT, NCCL_ROOT (see docs/building.md).

find_package(MPI REQUIRED COMPONENTS C CXX)
find_package(OpenMP REQUIRED COMPONENTS CXX)

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "lctrain needs a parallel (MPI) HDF5; found a serial one at ${HDF5_INCLUDE_DIRS}. "
                      "On Debian: apt-get install libhdf5-openmpi-dev; elsewhere set HDF5_ROOT.")
endif()
add_library(lct_hdf5 INTERFACE)
target_include_directories(lct_hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(lct_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES} MPI::MPI_C)
target_compile_definitions(lct_hdf5 INTERFACE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})

find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(Boost 1.66 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3.2 REQUIRED)
find_package(Threads REQUIRED)

if(LCT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(LCT_BUILD_BENCH)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    message(STATUS "Google Benchmark not found: op benchmarks are not built")
    set(LCT_BUILD_BENCH OFF)
  endif()
endif()

# CUDA is optional: the cpu backend is complete without it.
set(LCT_HAVE_CUDA OFF)
if(LCT_WITH_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${LCT_CUDA_ARCHITECTURES})
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
              PATH_SUFFIXES include)
    find_library(NCCL_LIBRARY nccl HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR}
                 ${CUDAToolkit_LIBRARY_ROOT}/lib PATH_SUFFIXES lib lib64)
    if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      set(LCT_HAVE_CUDA ON)
      message(STATUS "CUDA backend: ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES}, NCCL ${NCCL_LIBRARY})")
    else()
      message(STATUS "CUDA backend: OFF (nvcc found but NCCL not; set NCCL_ROOT)")
    endif()
  else()
    message(STATUS "CUDA backend: OFF (no nvcc)")
  endif()
endif()

# Eigen, with GCC 12's false -W(maybe-)uninitialized from _mm512_undefined_ps() in Eigen's AVX-512
# transposes silenced for the code that instantiates Eigen (the values are never read).
add_library(lct_eigen INTERFACE)
target_link_libraries(lct_eigen INTERFACE Eigen3::Eigen)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(lct_eigen INTERFACE -Wno-maybe-uninitialized -Wno-uninitialized)
endif()
