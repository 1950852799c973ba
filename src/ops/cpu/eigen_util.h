// Eigen maps over our row-major buffers.
#pragma once

#include <Eigen/Dense>

namespace lct::cpu {

template <class T> using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MatMap = Eigen::Map<RowMat<T>>;
template <class T> using ConstMatMap = Eigen::Map<const RowMat<T>>;
// A [rows, cols] sub-matrix whose rows are `ld` elements apart (e.g. one head of [T, H, D]).
template <class T> using StridedMap = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T> using ConstStridedMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;

template <class T> StridedMap<T> strided(T* p, int64_t rows, int64_t cols, int64_t ld) {
  return StridedMap<T>(p, rows, cols, Eigen::OuterStride<>(ld));
}
template <class T> ConstStridedMap<T> strided(const T* p, int64_t rows, int64_t cols, int64_t ld) {
  return ConstStridedMap<T>(p, rows, cols, Eigen::OuterStride<>(ld));
}

}  // namespace lct::cpu
