// The single place where advaug includes xtensor.
//
// Debian 12 ships xtensor 0.24, whose headers live flat in <xtensor/xtensor.hpp>;
// xtensor 0.26 moved them into role folders (<xtensor/containers/xtensor.hpp>).
// Every other advaug header includes this file instead of xtensor directly, so a
// change of xtensor version is a change to this file alone.
#pragma once

#if __has_include(<xtensor/containers/xtensor.hpp>)
#include <xtensor/containers/xadapt.hpp>
#include <xtensor/containers/xtensor.hpp>
#include <xtensor/core/xmath.hpp>
#include <xtensor/core/xnoalias.hpp>
#include <xtensor/misc/xsort.hpp>
#include <xtensor/io/xio.hpp>
#include <xtensor/views/xview.hpp>
#else
#include <xtensor/xadapt.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xsort.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>
#endif

#include <cstddef>
#include <cstdint>

namespace advaug {

/// Dense row-major tensor of rank N: the only container type in advaug's public API.
template <class T, std::size_t N>
using tensor = xt::xtensor<T, N>;

/// Class labels, one per sample. Signed so that a negative label can be reported.
using label_vector = xt::xtensor<std::int64_t, 1>;

}  // namespace advaug
