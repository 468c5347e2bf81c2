// The image shape an image family declares: its rows are [C, H, W] images, flat and
// channel-major (a [N, C, H, W] batch read as [N, C*H*W]; Fashion-MNIST's [N, 784] is {1, 28, 28}).
#pragma once

#include <cstddef>

#include "advaug/detail/error.hpp"

namespace advaug {

struct image_shape {
    std::size_t channels = 1;
    std::size_t height = 0;
    std::size_t width = 0;

    std::size_t size() const { return channels * height * width; }
    std::size_t pixels() const { return height * width; }
};

/// The shape of `features`-long rows of images `height` x `width`: one channel per
/// height * width features. Refuses a count that the image size does not divide.
inline image_shape image_shape_for(const char* function, std::size_t features, std::size_t height,
                                   std::size_t width) {
    if (height == 0 || width == 0) {
        detail::invalid(function, "image height and width must be >= 1, got ", height, " x ",
                        width);
    }
    if (features == 0 || features % (height * width) != 0) {
        detail::invalid(function, "the feature count ", features,
                        " is not a multiple of the image size ", height, " x ", width, " = ",
                        height * width);
    }
    return {features / (height * width), height, width};
}

namespace detail {
inline image_shape checked_image_shape(const char* function, image_shape s) {
    if (s.channels == 0 || s.height == 0 || s.width == 0) {
        invalid(function, "image shape must have channels, height and width >= 1, got [",
                s.channels, ", ", s.height, ", ", s.width, "]");
    }
    return s;
}
}  // namespace detail

}  // namespace advaug
