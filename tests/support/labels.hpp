// labels_of: a label_vector written as a list, for small hand-made data sets.
#pragma once

#include <advaug/data/dataset.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace advaug::testing {

/// The labels `values`, in order, as a label_vector.
inline label_vector labels_of(std::vector<std::int64_t> values) {
    auto y = label_vector::from_shape({values.size()});
    std::copy(values.begin(), values.end(), y.begin());
    return y;
}

}  // namespace advaug::testing
